//! One certificate pair, end to end: lock, decide, wait, key, CSR, request (retries and failover),
//! checks, atomic write, hook. `gencert` runs one job; `sync` runs many, sharing transports.
//!
//! The order is chosen so that every input error is found before a key is generated and every
//! output error before the CA is asked to sign: a job either ends with all outputs written or
//! leaves the disk as it was.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::client::CaClient;
use crate::csr::CertificateRequest;
use crate::error::{Error, Result};
use crate::hook;
use crate::inspect::rfc3339;
use crate::keygen::{PrivateKey, pem_encode};
use crate::lock::PairLock;
use crate::output::{Bundle, Destination, FileOptions, Reserved};
use crate::profile::Target;
use crate::protocol::SignRequest;
use crate::renew::{self, Action, Decision};
use crate::transport::{TlsOptions, Transport};
use crate::verify;

/// Everything one pair needs, resolved from flags or a sync spec.
#[derive(Debug)]
pub struct Job {
    pub request: CertificateRequest,
    /// `Some` when `-hostname` replaced the hosts: then they are also sent to the CA.
    pub hostname_override: Option<Vec<String>>,
    pub target: Target,
    pub tls: TlsOptions,
    pub profile: String,
    pub label: String,
    /// Sent as the sign request's `crl_override` (`-crl`; empty: the CA's own).
    pub crl_override: String,
    pub destination: Destination,
    /// The files the job was made from (csr.json, the profile and its `file:` auth key, the CA
    /// and client files; in sync, the spec): no output of this job or another may replace them.
    pub inputs: Vec<(PathBuf, &'static str)>,
    pub files: FileOptions,
    pub renewal: Renewal,
}

/// How a job treats an existing pair, and how hard it tries.
#[derive(Clone, Debug, Default)]
pub struct Renewal {
    /// Keep a pair valid for longer than this (`--renew-before`); `None` always issues.
    pub renew_before: Option<Duration>,
    /// Issue even when the pair could stay.
    pub force: bool,
    /// Keep the existing private key and send a new CSR for it.
    pub reuse_key: bool,
    /// Run through `sh -c` after the files changed.
    pub exec: Option<String>,
    /// How long the hook may run before it is stopped.
    pub exec_timeout: Duration,
    /// Random wait before contacting the CA.
    pub jitter: Option<Jitter>,
    /// Extra attempts for retryable failures.
    pub retries: u32,
    /// How long to wait for the pair's lock.
    pub lock_wait: Duration,
}

/// `--jitter`: contact the CA at a random point of a window that opens when the run starts.
///
/// The point is counted from the start of the run, not from the moment a job gets to it: sync
/// runs its specs a few at a time, and waits that each began when a worker reached them would
/// add up (8 due specs on 2 cores, `--jitter 5m`: up to 20 minutes). A spec whose point has
/// passed by then does not wait at all.
#[derive(Clone, Copy, Debug)]
pub struct Jitter {
    /// How long the window is (the flag's value).
    pub window: Duration,
    /// When the window opened.
    pub from: Instant,
}

impl Jitter {
    /// A window of `window` opening now.
    pub fn starting_now(window: Duration) -> Self {
        Self {
            window,
            from: Instant::now(),
        }
    }

    /// How long to wait from now: to a random point of the window, nothing once it is past.
    fn wait(&self) -> Duration {
        self.window
            .mul_f64(random_fraction())
            .saturating_sub(self.from.elapsed())
    }
}

/// What a job did.
#[derive(Debug)]
pub struct Outcome {
    pub action: Action,
    pub reason: String,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub serial: String,
    pub not_after: i64,
    /// Set when the files changed but `--exec` failed.
    pub hook_error: Option<Error>,
    /// A pair that stays was given the owner or modes the flags ask for, or its deleted CSR
    /// back.
    pub converged: bool,
}

impl Outcome {
    /// Whether files changed: a new pair, or the owner or mode of a pair that stays (for
    /// config management, a change like any other).
    pub fn changed(&self) -> bool {
        self.action != Action::Unchanged || self.converged
    }

    /// Whether the one-line summary is shown at cfssl's `loglevel`: a change unless errors only
    /// (`-loglevel 3`, `--quiet`), an unchanged pair at info level or below, so that cron with
    /// `-loglevel 2` mails only on news.
    pub fn shown_at(&self, loglevel: u8) -> bool {
        loglevel <= if self.changed() { 2 } else { 1 }
    }

    /// The `--report json` object (gencert's, one of sync's), with `error` and `exit_code` when
    /// the hook failed.
    pub fn to_json(&self) -> serde_json::Value {
        let path = |p: &Option<PathBuf>| p.as_deref().map(|p| p.display().to_string());
        let mut value = serde_json::json!({
            "changed": self.changed(),
            "action": self.action.as_str(),
            "reason": self.reason,
            "cert": path(&self.cert),
            "key": path(&self.key),
            "serial": self.serial,
            "not_after": rfc3339(self.not_after),
        });
        if let Some(err) = &self.hook_error {
            value["error"] = err.to_string().into();
            value["exit_code"] = err.exit_code().into();
        }
        value
    }

    /// The one-line human summary:
    /// `renewed node.pem (expires in 9d, under 30d); serial …, not after …`.
    pub fn summary(&self) -> String {
        let what = self
            .cert
            .as_deref()
            .map_or_else(|| "certificate".into(), |p| p.display().to_string());
        let verb = match self.action {
            Action::Issued => "issued",
            Action::Renewed => "renewed",
            Action::Unchanged => "kept",
        };
        format!(
            "{verb} {what} ({}); serial {}, not after {}",
            self.reason,
            self.serial,
            rfc3339(self.not_after)
        )
    }
}

impl Job {
    /// [`Self::inputs`] as paths, for [`crate::output::check_distinct`].
    pub fn input_files(&self) -> impl Iterator<Item = (&Path, &'static str)> {
        self.inputs
            .iter()
            .map(|(path, what)| (path.as_path(), *what))
    }

    /// The certificate and key paths, when the job writes files.
    pub fn paths(&self) -> Option<(&Path, &Path)> {
        match &self.destination {
            Destination::Files {
                cert: Some(cert),
                key,
                ..
            } => Some((cert, key)),
            _ => None,
        }
    }

    /// Runs the job. `transport` builds (or lends) the client for `self.tls`; it is called only
    /// once a certificate is due, so an unchanged pair costs no TLS set-up. It is still called
    /// before any key is generated, so a bad CA or client-identity file is reported first.
    pub fn run<T: std::ops::Deref<Target = Transport>>(
        &self,
        transport: impl FnOnce() -> Result<T>,
    ) -> Result<Outcome> {
        let (transport, lock) = self.wait_and_lock(transport)?;
        // No lock where this user can make or open none (an unwritable directory, another
        // user's lock file): a pair may stay, but nothing is written or removed, not even the
        // stale temporaries, which may be a locked run's own.
        let unlocked = lock.as_ref().and_then(PairLock::unheld);
        if unlocked.is_none() {
            crate::output::remove_stale_temps(&self.destination);
        }
        let (action, reason) = match self.decide()? {
            Decision::Keep {
                reason,
                serial,
                not_after,
            } => return self.keep(unlocked, reason, serial, not_after),
            Decision::Replace { action, reason } => (action, reason),
        };
        log::debug!("to be {}: {reason}", action.as_str());
        if let (Some(why), Some((cert, _))) = (unlocked, self.paths()) {
            // An unwritable directory is said as such; whatever else it is, the lock's words.
            self.check_due_outputs()?;
            return Err(Error::output(
                &crate::lock::lock_path(cert),
                format!("{why}; a due pair is not written without its lock"),
            ));
        }
        let files = FileOptions {
            owner: self.files.owner.or_else(|| self.inherited_owner()),
            ..self.files
        };
        let new = (|| {
            let mut reserved = Reserved::new(self.destination.clone(), &files)?;
            let transport = transport.force()?;
            let new = self.issue(&transport, &mut reserved)?;
            self.install(reserved, &new)?;
            Ok(new)
        })()
        .inspect_err(|err| {
            // The CA's side failed (down, refusing, TLS, a bad reply): what the operator cannot
            // mend at once, so how long the pair has is the urgency. A local error (a file,
            // an input) is one line, to be fixed before the next run anyway.
            if matches!(
                err,
                Error::Unavailable { .. }
                    | Error::Tls { .. }
                    | Error::Refused { .. }
                    | Error::BadResponse { .. }
            ) {
                self.say_what_stays(&reason);
            }
        })?;
        log::debug!("serial {} from {}", new.issued.serial, new.server);
        self.warn_if_renewed_every_run(&new.issued);

        let (cert, key) = self.owned_paths();
        let hook_error = self.run_hook();
        Ok(Outcome {
            action,
            reason,
            cert,
            key,
            serial: new.issued.serial,
            not_after: new.issued.not_after,
            hook_error,
            converged: false,
        })
    }

    /// When the CA did not replace a due pair, says how long the certificate left in place
    /// still has (`reason`: why it was due), so that the mail of a failed cron run tells how
    /// urgent it is: days, or minutes.
    fn say_what_stays(&self, reason: &str) {
        let Some((cert, key)) = self.paths() else {
            return;
        };
        // A pair that does not work (no key, another key, expired) has no time left to say.
        let Some(not_after) = renew::working_pair_not_after(cert, key) else {
            return;
        };
        log::warn!(
            "{} is left in place and expires in {} (at {}); this run was to replace it \
             ({reason})",
            cert.display(),
            renew::human(not_after - unix_now()),
            crate::inspect::rfc3339(not_after)
        );
    }

    /// What comes before the decision: the outputs' paths checked, `--jitter`'s wait, and the
    /// pair's lock, in that order.
    ///
    /// A path that can never be written fails at once: before the wait, and before the lock
    /// file is made beside it. One that cannot be replaced fails only if the pair is due: before
    /// the wait when there is one ([`Self::check_due_outputs`]), else in [`Reserved::new`].
    /// The wait comes before the lock: a run asleep for minutes must not
    /// hold it (a config-management run in that window would give up as busy). The transport
    /// is built before the wait, so a bad CA or client-identity file is reported at once.
    fn wait_and_lock<T, F: FnOnce() -> Result<T>>(
        &self,
        transport: F,
    ) -> Result<(Lazy<T, F>, Option<PairLock>)> {
        for (path, _) in self.destination.outputs() {
            crate::output::check_output_path(path)?;
        }
        let mut transport = Lazy::Pending(transport);
        if let Some(wait) = self.jitter_wait()? {
            // Not when the pair is its own client identity: its files are read under the
            // lock, not while another run may be swapping them.
            let own_identity = (self.tls.client_identity.as_ref()).is_some_and(|(cert, key)| {
                crate::output::is_own_identity(&self.destination, cert, key)
            });
            if !own_identity {
                transport = Lazy::Ready(transport.force()?);
            }
            std::thread::sleep(wait);
        }
        let lock = match self.paths() {
            // Beside the file itself, when the name is a symlink: one lock whichever name a
            // run is given.
            Some((cert, _)) => {
                let cert = crate::output::write_target(cert)?;
                let given_to = self.files.owner.and_then(|owner| owner.uid);
                Some(PairLock::acquire(&cert, self.renewal.lock_wait, given_to)?)
            }
            None => None,
        };
        Ok((transport, lock))
    }

    /// A certificate for the pair: the key (new, or kept with `--reuse-key`) and its CSR, the
    /// signing request while the key and CSR are staged, and the checks on the reply. The key
    /// itself is wiped when this returns; only its PEM text goes on, to be written.
    fn issue(&self, transport: &Transport, reserved: &mut Reserved) -> Result<NewPair> {
        let mut reused_pem = None;
        let key = self.key(&mut reused_pem)?;
        let csr_pem = pem_encode("CERTIFICATE REQUEST", &self.request.to_csr_der(&key)?);
        let sign_request = SignRequest {
            hosts: self.hostname_override.as_deref(),
            certificate_request: &csr_pem,
            subject: None,
            profile: &self.profile,
            crl_override: &self.crl_override,
            label: &self.label,
        };
        // A reused key is written back as it was read (PKCS#8 stays PKCS#8).
        let key_pem = reused_pem.unwrap_or_else(|| key.to_pem());
        let (reply, staged) =
            self.request_while_staging(transport, &sign_request, reserved, &key_pem);
        let (server, cert_pem) = reply?;
        let issued = verify::check(
            &cert_pem,
            key.spki_der(),
            &self.request.sans(),
            unix_now(),
            transport.pinned_cas(),
        )
        .map_err(|detail| Error::BadResponse {
            server: server.clone(),
            detail,
        })?;
        // A disk error while staging is reported after the CA's reply has been judged, as it
        // was when every file was written at the end.
        staged?;
        Ok(NewPair {
            server,
            issued,
            csr_pem,
            key_pem,
        })
    }

    /// Swaps the new pair in. The hook is owed from before the swap until it succeeds; a swap
    /// that fails (and so restores the old pair) withdraws the debt it recorded, leaving any
    /// earlier one.
    fn install(&self, reserved: Reserved, new: &NewPair) -> Result<()> {
        let owed = self.owed_hook();
        let recorded = owed.as_ref().map(hook::Owed::record).transpose()?;
        let committed = reserved.commit(&Bundle {
            cert: Some(&new.issued.pem),
            csr: &new.csr_pem,
            key: &new.key_pem,
        });
        if committed.is_err()
            && let (Some(owed), Some(recorded)) = (owed, recorded)
        {
            owed.withdraw(recorded);
        }
        committed
    }

    /// Writes the CSR file of a pair that stays when it is gone (`-bare` leaves three files, as
    /// cfssljson does, and config management may look for all three), from the kept key and
    /// this run's request: the one the CA signed said the same, under another signature.
    /// Returns its path when it wrote it. A CSR that cannot be written is a warning: the pair
    /// itself is fine, and its run is not failed for a file nothing needs.
    fn restore_csr(&self) -> Option<PathBuf> {
        let Destination::Files {
            key,
            csr: Some(csr),
            ..
        } = &self.destination
        else {
            return None;
        };
        if std::fs::symlink_metadata(csr).is_ok() {
            return None;
        }
        let written = (|| -> Result<()> {
            let key_file = crate::output::write_target(key)?;
            let text = crate::error::read_key_text(&key_file)
                .map_err(|e| Error::input_file(key, e))?
                .ok_or_else(|| Error::input_file(key, "is too large to be a key"))?;
            let private = PrivateKey::from_pem(&text).map_err(|e| Error::input_file(key, e))?;
            let pem = pem_encode("CERTIFICATE REQUEST", &self.request.to_csr_der(&private)?);
            // Root gives it to whoever has the key, as the file it replaces was.
            let owner = self.files.owner.or_else(|| {
                let meta = std::fs::metadata(&key_file).ok()?;
                (nix::unistd::geteuid().is_root()).then(|| crate::output::Owner {
                    uid: Some(std::os::unix::fs::MetadataExt::uid(&meta)),
                    gid: Some(std::os::unix::fs::MetadataExt::gid(&meta)),
                })
            });
            crate::output::write_file_owned(csr, pem.as_bytes(), self.files.mode, owner)
        })();
        match written {
            Ok(()) => Some(csr.clone()),
            Err(e) => {
                log::warn!("{} is missing and was not restored: {e}", csr.display());
                None
            }
        }
    }

    /// [`Self::paths`], owned, for an [`Outcome`].
    fn owned_paths(&self) -> (Option<PathBuf>, Option<PathBuf>) {
        self.paths()
            .map(|(c, k)| (c.to_path_buf(), k.to_path_buf()))
            .unzip()
    }

    /// How long `--jitter` waits on this run: a random part of it when the pair is due (as seen
    /// without the lock), else nothing.
    fn jitter_wait(&self) -> Result<Option<Duration>> {
        let Some(jitter) = self.renewal.jitter else {
            return Ok(None);
        };
        // A pair that cannot be inspected fails under the lock, without a wait.
        if !matches!(self.decide(), Ok(Decision::Replace { .. })) {
            return Ok(None);
        }
        // Nor does a run whose outputs could not be written wait (up to --jitter, 10m in the
        // shipped cron line) to say so.
        self.check_due_outputs()?;
        let wait = jitter.wait();
        log::debug!(
            "waiting {} (--jitter) before contacting the CA",
            humantime::format_duration(round_ms(wait))
        );
        Ok(Some(wait))
    }

    /// Checks that a due pair's outputs can be written now: each file replaceable (an
    /// unwritable directory, another user's key are not), or stdout one that keeps what is
    /// printed (not /dev/null).
    fn check_due_outputs(&self) -> Result<()> {
        if self.destination == Destination::Stdout {
            return crate::output::stdout_keeps_output();
        }
        for (path, _) in self.destination.outputs() {
            crate::output::check_writable(path)?;
        }
        Ok(())
    }

    /// The outcome for a pair that stays: its files brought to the flags' owner and modes, a
    /// deleted CSR written back, and the hook an earlier run still owes run. All only under the
    /// pair's lock: a run that can take none (`unlocked` says why) changes nothing, saying what
    /// it leaves, and an owed hook whose record it cannot clear would run on every tick.
    fn keep(
        &self,
        unlocked: Option<&str>,
        reason: String,
        serial: String,
        not_after: i64,
    ) -> Result<Outcome> {
        let locked = unlocked.is_none();
        let converged = crate::output::converge(&self.destination, &self.files, unlocked)?;
        let restored = if locked { self.restore_csr() } else { None };
        let mut notes = String::new();
        if converged {
            notes.push_str(if crate::logging::in_spec() {
                "; owner or modes set as the spec asks"
            } else {
                "; owner or modes set as the flags ask"
            });
        }
        if let Some(csr) = &restored {
            notes.push_str(&format!("; {} restored", csr.display()));
        }
        let owed = locked
            && self
                .owed_hook()
                .is_some_and(|owed| owed.by_an_earlier_run());
        let hook_error = if owed {
            notes.push_str(&format!(
                "; ran the {} hook an earlier run did not finish",
                crate::logging::setting("--exec")
            ));
            self.run_hook()
        } else {
            None
        };
        let (cert, key) = self.owned_paths();
        Ok(Outcome {
            action: Action::Unchanged,
            reason: reason + &notes,
            cert,
            key,
            serial,
            not_after,
            // A hook that now ran (a service reloaded at last) is news to config management.
            converged: converged || restored.is_some() || (owed && hook_error.is_none()),
            hook_error,
        })
    }

    /// Runs the `--exec` hook for the pair, if there is one; the marker of an owed hook is
    /// removed once it succeeds.
    fn run_hook(&self) -> Option<Error> {
        let (Some(command), Some((cert, key))) = (&self.renewal.exec, self.paths()) else {
            return None;
        };
        let result = hook::run(command, cert, key, self.renewal.exec_timeout);
        if result.is_ok()
            && let Some(owed) = self.owed_hook()
        {
            owed.paid();
        }
        result.err()
    }

    /// The owner root gives a new pair without `--owner`: that of the old pair, a service's
    /// pair in its own directory renewed by root's timer, so the service can still read its
    /// key. Only for a whole pair of the directory owner's that the pinned CA issued for this
    /// CN (signature checked): anything less (a key alone, a self-made pair, another user's
    /// files, no pinned CA to check against) is no instruction, since whoever may write the
    /// directory could otherwise plant it and be given root's new key.
    fn inherited_owner(&self) -> Option<crate::output::Owner> {
        use std::os::unix::fs::MetadataExt as _;
        if !nix::unistd::geteuid().is_root() {
            return None;
        }
        let (cert, key) = self.paths()?;
        let cert = crate::output::write_target(cert).ok()?;
        let key = crate::output::write_target(key).ok()?;
        let (cert_meta, key_meta) = (
            std::fs::metadata(&cert).ok()?,
            std::fs::metadata(&key).ok()?,
        );
        let dir = crate::output::existing_parent_dir(&cert, "directory").ok()?;
        let dir_owner = std::fs::metadata(dir).ok()?.uid();
        let owner = key_meta.uid();
        let pinned = crate::transport::pinned_certificates(self.tls.pinned_ca.as_deref()?).ok()?;
        (owner != 0
            && cert_meta.uid() == owner
            && dir_owner == owner
            && renew::vouched_pair(&cert, &key, &self.request, &pinned))
        .then_some(crate::output::Owner {
            uid: Some(owner),
            gid: None,
        })
    }

    /// The record of an owed `--exec` hook, when the job has one.
    fn owed_hook(&self) -> Option<hook::Owed> {
        self.renewal.exec.as_ref()?;
        let (cert, _) = self.paths()?;
        Some(hook::Owed::beside(cert))
    }

    /// A `--renew-before` not shorter than what the CA issues would renew on every run; the
    /// next runs use a third of the lifetime instead ([`renew::Threshold`]), and the operator is
    /// told once, when the certificate is new, so that the flag or the CA profile gets fixed.
    ///
    /// The same goes for a certificate whose issuer is not in the pinned CA file: renewal keeps
    /// a pair only when the pinned CA issued it, so every run would renew it again.
    fn warn_if_renewed_every_run(&self, issued: &verify::Issued) {
        let name = self.paths().map_or_else(
            || "the certificate".into(),
            |(c, _)| c.display().to_string(),
        );
        // The pair stops verifying when its CA's own certificate expires, whatever its own
        // not-after says (renewal then counts it as due).
        if let verify::IssuerCheck::Pinned { ca, ca_not_after } = &issued.issuer
            && *ca_not_after < issued.not_after
        {
            log::warn!(
                "{name}: its CA \"{ca}\" expires at {}, before the certificate does ({}): \
                 nothing verifies it after that; the CA should sign with a root that outlives it",
                crate::inspect::rfc3339(*ca_not_after),
                crate::inspect::rfc3339(issued.not_after)
            );
        }
        let Some(renew_before) = self.renewal.renew_before else {
            return;
        };
        if let (verify::IssuerCheck::NotInPin { issuer }, Some(pinned)) =
            (&issued.issuer, &self.tls.pinned_ca)
        {
            log::warn!(
                "the certificate was issued by \"{issuer}\", which is not in {}: {} will renew it \
                 on every run; add that CA to the file (a PEM bundle may hold several)",
                pinned.display(),
                crate::logging::setting("--renew-before")
            );
        }
        // A CA that adds a SAN or changes the subject (its profile's policy) issues a pair the
        // next run finds changed: it would renew on every run.
        if let Some(change) = renew::request_change(&issued.pem, &self.request) {
            log::warn!(
                "the CA issued other names than asked ({change}): {} will renew it on every run; \
                 make csr.json ask for what the CA's profile issues",
                crate::logging::setting("--renew-before")
            );
        }
        let threshold = renew::Threshold::new(renew_before, issued.not_after - issued.not_before);
        let setting = crate::logging::setting("--renew-before");
        // Due the moment it arrives: a CA that backdates the start (cfssl's 5 minutes, or a
        // profile's `backdate`) counts the expiry from there, or its clock is behind.
        let left = issued.not_after - unix_now();
        if left <= threshold.seconds {
            log::warn!(
                "{name}: the CA issued it with {} left, not over {setting} {}: every run will \
                 renew it; set {setting} under {} less the time between runs (or lengthen the \
                 CA profile's expiry)",
                renew::exact(left.max(0)),
                renew::exact(threshold.seconds),
                renew::exact(left.max(0)),
            );
        } else if let Some(lifetime) = threshold.replaced_for_lifetime {
            log::warn!(
                "{name}: the CA issues for {}, not longer than {setting} {}: it will be renewed \
                 when {} is left; set {setting} under {} (or lengthen the CA profile's expiry)",
                renew::exact(lifetime),
                renew::exact(threshold.renew_before()),
                renew::exact(threshold.seconds),
                renew::exact(lifetime),
            );
        }
    }

    fn decide(&self) -> Result<Decision> {
        let Some((cert, key)) = self.paths() else {
            return Ok(Decision::Replace {
                action: Action::Issued,
                reason: "requested".into(),
            });
        };
        let default_action = if cert.exists() {
            Action::Renewed
        } else {
            Action::Issued
        };
        if self.renewal.force {
            return Ok(Decision::Replace {
                action: default_action,
                reason: "--force".into(),
            });
        }
        let Some(renew_before) = self.renewal.renew_before else {
            return Ok(Decision::Replace {
                action: default_action,
                reason: format!(
                    "no {}: always issue",
                    crate::logging::setting("--renew-before")
                ),
            });
        };
        // A pinned CA file that cannot be read or holds no certificate vouches for nothing: the
        // pair is due, and the transport, built next, reports the file (exit 3).
        let Ok(pinned_cas) = (self.tls.pinned_ca.as_deref())
            .map(crate::transport::pinned_certificates)
            .transpose()
        else {
            return Ok(Decision::Replace {
                action: default_action,
                reason: "the pinned CA file is unusable".into(),
            });
        };
        let wanted = renew::Wanted {
            request: &self.request,
            pinned_cas: pinned_cas.as_deref(),
            renew_before,
            reuse_key: self.renewal.reuse_key,
        };
        renew::decide(cert, key, &wanted, unix_now())
    }

    /// The key to certify: with `--reuse-key`, the existing one, else a new one. A key file that
    /// is there but cannot be reused (encrypted, damaged, unreadable) fails the run
    /// and stays as it is: whoever asked to keep the key has pinned it somewhere (DANE, a
    /// peer's allow-list), and a new key would break that silently. Only a missing key is made.
    /// A reused key's file text goes to `reused_text`, to be written back as it was. (An
    /// out-parameter, not a tuple: the key is returned as it is made, never copied into a
    /// larger value on the stack, where its secret would outlive the wipe.)
    fn key(&self, reused_text: &mut Option<zeroize::Zeroizing<String>>) -> Result<PrivateKey> {
        let (true, Some((_, key_path))) = (self.renewal.reuse_key, self.paths()) else {
            return PrivateKey::generate(self.request.key);
        };
        let refused = |why: String| {
            Error::input_file(
                key_path,
                format!(
                    "{setting} cannot reuse it: {why}; fix it, move it aside, or drop {setting} \
                     for a new key",
                    setting = crate::logging::setting("--reuse-key")
                ),
            )
        };
        // Through a symlink of this user's or root's, as the key is written ([`crate::output::write_target`]).
        let key_file = crate::output::write_target(key_path)?;
        // Opened once: its owner is checked on the file that is read, not on a name someone
        // could fill between the two.
        let file =
            match crate::error::open_regular(std::fs::OpenOptions::new().read(true), &key_file) {
                Ok(file) => file,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    log::debug!("no key at {} to reuse; generating one", key_path.display());
                    return PrivateKey::generate(self.request.key);
                }
                Err(e) => return Err(refused(e.to_string())),
            };
        // A key is reused only from someone who could spoil the pair anyway (this user, root,
        // the directory's owner, the --owner user): one planted in a directory others may
        // write (a sticky /tmp-like one) would get the planter's own key certified for the node.
        if let Some(owner) = file
            .metadata()
            .ok()
            .and_then(|meta| self.foreign_key_owner(&key_file, &meta))
        {
            return Err(refused(format!(
                "it belongs to uid {owner}, who neither runs nodecert nor owns the directory \
                 nor is {}, so may have planted it and know it",
                crate::logging::setting("--owner")
            )));
        }
        let text = match crate::error::read_at_most(file, crate::error::MAX_INPUT_BYTES) {
            Ok(Some(bytes)) => {
                let bytes = zeroize::Zeroizing::new(bytes);
                zeroize::Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned())
            }
            Ok(None) => return Err(refused("it is too large to be a key".into())),
            Err(e) => return Err(refused(e.to_string())),
        };
        let key = PrivateKey::from_pem(&text).map_err(|e| refused(e.to_string()))?;
        // --reuse-key wins over csr.json's key section, but not silently.
        if key.spec() != self.request.key {
            log::warn!(
                "{} is {}, not the {} csr.json asks for: {} keeps it",
                key_path.display(),
                key.spec(),
                self.request.key,
                crate::logging::setting("--reuse-key")
            );
        }
        *reused_text = Some(text);
        Ok(key)
    }

    /// The owner of the key file at `key_file` (`meta`: of the file opened) when it is someone
    /// who could not spoil the pair anyway (not this user, root, the directory's owner or the
    /// `--owner` user); None when it is one of those.
    fn foreign_key_owner(&self, key_file: &Path, meta: &std::fs::Metadata) -> Option<u32> {
        use std::os::unix::fs::MetadataExt as _;
        let owner = meta.uid();
        let dir = crate::output::existing_parent_dir(key_file, "directory").ok()?;
        let dir_owner = std::fs::metadata(dir).ok()?.uid();
        let given_to = self.files.owner.and_then(|owner| owner.uid);
        (!crate::lock::could_spoil_the_pair(owner, dir_owner, given_to)).then_some(owner)
    }

    /// The signing request ([`Self::request_with_retries`]), while another thread writes and
    /// fsyncs the key and CSR ([`Reserved::stage`]): the CA's signing time pays for two of the
    /// three fsyncs. Returns the reply and the staging result apart, so that the caller judges
    /// the reply first. If no thread can be started, [`Reserved::commit`] writes those files
    /// itself.
    fn request_while_staging(
        &self,
        transport: &Transport,
        request: &SignRequest<'_>,
        reserved: &mut Reserved,
        key_pem: &str,
    ) -> (Result<(String, String)>, Result<()>) {
        if !reserved.writes_files() {
            return (self.request_with_retries(transport, request), Ok(()));
        }
        let csr_pem = request.certificate_request;
        std::thread::scope(|scope| {
            let staging = std::thread::Builder::new()
                .name("stage".into())
                .stack_size(STAGING_STACK)
                .spawn_scoped(scope, || reserved.stage(key_pem, csr_pem));
            let reply = self.request_with_retries(transport, request);
            // Joined here, whatever the reply: a staging thread that panicked must not turn a
            // request error into a panic when the scope ends.
            let staged = match staging {
                Ok(handle) => handle.join().unwrap_or_else(|_| {
                    Err(Error::Internal("writing the key and CSR failed".into()))
                }),
                Err(_) => Ok(()),
            };
            (reply, staged)
        })
    }

    /// The signing request, through the remotes in failover order, with `--retries` exponential backoff (1 s doubling, at most
    /// 60 s, full jitter) for failures worth retrying; the CA's refusals are never retried.
    fn request_with_retries(
        &self,
        transport: &Transport,
        request: &SignRequest<'_>,
    ) -> Result<(String, String)> {
        let mut attempt = 0;
        loop {
            let client = CaClient {
                target: &self.target,
                transport,
            };
            let body = request.to_body(self.target.auth_key.as_ref(), unix_now());
            match client.certificate(self.target.sign_path(), &body, Some(self.request.key)) {
                Err(err) if err.is_retryable() && attempt < self.renewal.retries => {
                    let cap = Duration::from_secs(1 << attempt.min(6)).min(Duration::from_secs(60));
                    let wait = cap.mul_f64(random_fraction());
                    attempt += 1;
                    log::warn!(
                        "{err}; retry {attempt} of {} in {}",
                        self.renewal.retries,
                        humantime::format_duration(round_ms(wait))
                    );
                    std::thread::sleep(wait);
                }
                other => return other,
            }
        }
    }
}

/// A certificate the CA issued and the checks passed, with the CSR and key it goes with.
struct NewPair {
    /// The CA that signed it (for messages).
    server: String,
    issued: verify::Issued,
    csr_pem: zeroize::Zeroizing<String>,
    key_pem: zeroize::Zeroizing<String>,
}

/// Writing two small files needs little stack (a thread's default is 2 MiB); this leaves room for
/// a panic message and backtrace.
const STAGING_STACK: usize = 256 * 1024;

/// A value built at most once: now (`Ready`) or when first needed (`Pending`).
enum Lazy<T, F> {
    Ready(T),
    Pending(F),
}

impl<T, F: FnOnce() -> Result<T>> Lazy<T, F> {
    fn force(self) -> Result<T> {
        match self {
            Self::Ready(value) => Ok(value),
            Self::Pending(build) => build(),
        }
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A uniform value in [0, 1) from the OS's random source (for jitter; not a secret).
fn random_fraction() -> f64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return 0.5;
    }
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_waits_within_its_window_counted_from_the_start_of_the_run() {
        let window = Duration::from_secs(60);
        let fresh = Jitter::starting_now(window);
        let waits: Vec<Duration> = (0..50).map(|_| fresh.wait()).collect();
        assert!(waits.iter().all(|w| *w <= window), "{waits:?}");
        // Random, not a constant: 50 draws from a minute are not all the same.
        assert!(waits.iter().any(|w| *w != waits[0]), "{waits:?}");

        // A job reached 40 s into the run waits at most the 20 s left of the window; once the
        // window has passed, not at all. (An Instant that far back does not exist in the first
        // minute after boot, as on a fresh CI machine: then the window is moved instead.)
        let ago = |secs| Instant::now().checked_sub(Duration::from_secs(secs));
        let (late, past) = match (ago(40), ago(61)) {
            (Some(late), Some(past)) => {
                (Jitter { window, from: late }, Jitter { window, from: past })
            }
            _ => {
                let now = Instant::now();
                let shifted = |secs: u64| Jitter {
                    window: window.saturating_sub(Duration::from_secs(secs)),
                    from: now,
                };
                (shifted(40), shifted(61))
            }
        };
        assert!((0..50).all(|_| late.wait() <= Duration::from_secs(20)));
        assert!((0..50).all(|_| past.wait() == Duration::ZERO));
    }
}
