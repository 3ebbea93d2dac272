//! `nodecert gencert`: one pair from csr.json and a request profile (see [`crate::job`]).

use std::path::Path;

use crate::cli::{GencertArgs, RenewalArgs, ReportFormat};
use crate::error::{Error, Result};
use crate::job::{Jitter, Job, Outcome, Renewal, unix_now};
use crate::metrics::{self, Sample};
use crate::output::{Destination, FileOptions};
use crate::profile::Target;
use crate::transport::Transport;

/// Runs gencert.
pub(crate) fn run(args: &GencertArgs, loglevel: u8) -> Result<()> {
    // The metrics file and the series in it: the certificate's path, since series are per
    // certificate file (JSON on stdout has none to name).
    let metrics = match (&args.renewal.metrics_file, destination(args)) {
        (None, _) => None,
        (
            Some(path),
            Destination::Files {
                cert: Some(cert), ..
            },
        ) => {
            metrics::check_target(path)?;
            Some((path, cert))
        }
        (Some(_), _) => {
            return Err(Error::Usage(
                "--metrics-file needs a certificate file to report on: add -bare NAME or --cert"
                    .into(),
            ));
        }
    };
    // Reading the inputs writes nothing; the outputs are checked against them (the profile's
    // `file:` auth key among them) before anything is written, the metrics file included: it
    // may be the file in conflict.
    let job = job_from_args(args);
    check_distinct(args, job.as_ref().ok())?;
    if let Some((path, _)) = &metrics {
        metrics::check_contents(path)?;
    }
    // Bad input is a failed run too: monitoring must see a csr.json or profile that went bad.
    let result =
        job.and_then(|job| job.run(|| Transport::new(&job.tls, args.ca.timeout).map(Box::new)));
    // The report comes first: a metrics file that then cannot be written (a full disk, its
    // lock held too long) must not hide a renewal that happened, and a hook that ran.
    // A failed run prints no report: its one error line is on stderr, and a consumer such as
    // Salt's `stateful` cmd takes a failure's comment from there (deploy/salt).
    let reported =
        (result.as_ref()).map_or(Ok(()), |outcome| report(&args.renewal, outcome, loglevel));
    let recorded = match metrics {
        Some((path, cert)) => record(path, &cert, &result),
        None => Ok(()),
    };
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(err) => {
            if let Err(metrics) = recorded {
                log::warn!("{metrics}");
            }
            return Err(err);
        }
    };
    // A hook that failed (exit 10: the service still runs the old pair) outweighs a report or
    // metrics file that could not be written; each of those is still said, and the first of
    // them is the run's error when the hook is fine.
    let mut errors = outcome
        .hook_error
        .into_iter()
        .chain(reported.err())
        .chain(recorded.err());
    match errors.next() {
        None => Ok(()),
        Some(first) => {
            errors.for_each(|other| log::warn!("{other}"));
            Err(first)
        }
    }
}

/// Writes the run's sample for the certificate at `cert` into the metrics file at `path`.
fn record(path: &Path, cert: &Path, result: &Result<Outcome>) -> Result<()> {
    let sample = Sample {
        name: metrics::series_name(cert),
        not_after: match result {
            Ok(outcome) => Some(outcome.not_after),
            Err(_) => crate::inspect::not_after_in_place(cert),
        },
        // As in sync: a failed hook is a failed run (the service may not use the new files).
        success: result.as_ref().is_ok_and(|o| o.hook_error.is_none()),
        at: unix_now(),
    };
    metrics::update(path, &[sample])
}

/// Refuses outputs that are one file, or one of the inputs ([`crate::output::check_distinct`]):
/// those named by flags, and the auth key file of the resolved `job`, when there is one.
fn check_distinct(args: &GencertArgs, job: Option<&Job>) -> Result<()> {
    let destination = destination(args);
    let lock = destination.lock_file();
    let mut outputs = destination.outputs();
    outputs.extend(lock.as_deref().map(|p| (p, "the pair's lock file")));
    outputs.extend(
        (args.renewal.metrics_file.as_deref()).map(|p| (p, "the metrics file (--metrics-file)")),
    );
    let mut inputs = inputs(args, job.map(|job| &job.target));
    if let (Some(cert), Some(key)) = (
        &args.ca.mutual_tls_client_cert,
        &args.ca.mutual_tls_client_key,
    ) && crate::output::is_own_identity(&destination, cert, key)
    {
        inputs.retain(|(path, _)| *path != cert.as_path() && *path != key.as_path());
    }
    crate::output::check_distinct(&outputs, &inputs)
}

/// The files a run reads: those named by flags, and the auth key file of the profile's
/// `target` once it is resolved.
fn inputs<'a>(args: &'a GencertArgs, target: Option<&'a Target>) -> Vec<(&'a Path, &'static str)> {
    let mut inputs = super::ca_inputs(&args.ca, target);
    inputs.push((&args.request.csr_json, "the csr.json input"));
    inputs
}

/// Where the pair goes: `-bare NAME`, `--cert/--key [--csr]`, or stdout.
fn destination(args: &GencertArgs) -> Destination {
    match (&args.bare, &args.cert, &args.key) {
        (Some(name), _, _) => Destination::bare(name),
        (None, Some(cert), Some(key)) => Destination::Files {
            cert: Some(cert.clone()),
            key: key.clone(),
            csr: args.csr.clone(),
        },
        _ => Destination::Stdout,
    }
}

/// Resolves the arguments: reads csr.json and the request profile, applies the overrides.
pub(crate) fn job_from_args(args: &GencertArgs) -> Result<Job> {
    let (request, hostname_override) = super::load_request(&args.request)?;
    if let Some(signer) = &args.signer {
        crate::signer::lint_request(
            signer,
            &request,
            &args.request.csr_json.display().to_string(),
        )?;
    }
    let (target, tls) = super::resolve_ca(&args.ca)?;
    let destination = destination(args);
    let renewal = &args.renewal;
    if destination == Destination::Stdout {
        let needs_files = [
            (renewal.renew_before.is_some(), "--renew-before"),
            (renewal.reuse_key, "--reuse-key"),
            (renewal.exec.is_some(), "--exec"),
            (renewal.owner.is_some(), "--owner"),
            (renewal.report == Some(ReportFormat::Json), "--report json"),
        ];
        if let Some((_, flag)) = needs_files.iter().find(|(set, _)| *set) {
            return Err(Error::Usage(format!(
                "{flag} works on files: add -bare NAME or --cert PATH --key PATH"
            )));
        }
    }
    if let Some(command) = &renewal.exec {
        crate::hook::check_command(command)
            .map_err(|d| Error::Usage(format!("flag --exec: {d}")))?;
    }
    let inputs = (inputs(args, Some(&target)).into_iter())
        .map(|(path, what)| (path.to_path_buf(), what))
        .collect();
    Ok(Job {
        inputs,
        request,
        hostname_override,
        target,
        tls,
        profile: args.ca.profile.clone(),
        label: args.ca.label.clone(),
        crl_override: args.crl.clone(),
        destination,
        files: FileOptions::from_flags(
            renewal.owner.as_deref(),
            renewal.mode.as_deref(),
            Some(&renewal.key_mode),
        )?,
        renewal: Renewal {
            renew_before: renewal.renew_before,
            force: renewal.force,
            reuse_key: renewal.reuse_key,
            exec: renewal.exec.clone(),
            exec_timeout: renewal.exec_timeout,
            jitter: renewal.jitter.map(Jitter::starting_now),
            retries: renewal.retries,
            lock_wait: renewal.lock_timeout,
        },
    })
}

/// Prints the outcome: JSON on stdout with `--report json`; otherwise, in renewal mode or with
/// `--report text`, one line on stderr ([`Outcome::shown_at`] says when, unless text is asked for).
fn report(renewal: &RenewalArgs, outcome: &Outcome, loglevel: u8) -> Result<()> {
    match renewal.report {
        Some(ReportFormat::Json) => {
            let line = serde_json::to_string(&outcome.to_json())
                .map_err(|e| Error::Internal(format!("encoding the report: {e}")))?;
            crate::output::print_report(&format!("{line}\n"))?;
        }
        Some(ReportFormat::Text) => crate::logging::print_outcome(&outcome.summary()),
        None if renewal.renew_before.is_some() && outcome.shown_at(loglevel) => {
            crate::logging::print_outcome(&outcome.summary());
        }
        None => {}
    }
    Ok(())
}
