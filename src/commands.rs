//! One module per subcommand: each turns its clap arguments into a plan and runs the concept
//! modules in order. Nothing below this layer sees a clap type.

pub mod gencert;
