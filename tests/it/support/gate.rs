//! A TCP relay to a real CA that holds the first connection at the gate: the test learns that
//! nodecert has reached the CA (so everything before the request is done: the outputs are
//! reserved and checked) and changes the world before the request goes through.

use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;

pub struct Gate {
    port: u16,
    arrived: Receiver<()>,
    open: Sender<()>,
}

impl Gate {
    /// Relays one connection to `upstream` (`127.0.0.1:PORT`), once [`Self::open`] is called.
    pub fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (arrived_tx, arrived) = channel();
        let (open, open_rx) = channel::<()>();
        std::thread::spawn(move || {
            let Ok((client, _)) = listener.accept() else {
                return;
            };
            let _ = arrived_tx.send(());
            if open_rx.recv().is_err() {
                return;
            }
            // Without the CA, the client is dropped: nodecert sees the connection close.
            let Ok(server) = TcpStream::connect(upstream) else {
                return;
            };
            let pipe = |mut from: TcpStream, mut to: TcpStream| {
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut from, &mut to);
                    let _ = to.shutdown(std::net::Shutdown::Write);
                })
            };
            let up = pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
            let down = pipe(server, client);
            let _ = (up.join(), down.join());
        });
        Self {
            port,
            arrived,
            open,
        }
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// Waits until nodecert has connected (at most 30 s).
    pub fn wait_for_arrival(&self) {
        self.arrived
            .recv_timeout(Duration::from_secs(30))
            .expect("nodecert did not connect to the CA");
    }

    /// Lets the held connection through to the CA.
    pub fn open(&self) {
        self.open.send(()).unwrap();
    }
}
