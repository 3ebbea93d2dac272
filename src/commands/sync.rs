//! `nodecert sync DIR`: every `*.json` spec in a directory, in parallel, one line each.
//!
//! Specs share one HTTP client per distinct TLS setting, so requests to the same CA reuse
//! connections; key generation runs on all cores. One failing spec never stops the others; the
//! exit code says whether any failed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use crate::cli::{ReportFormat, SyncArgs};
use crate::error::{Error, Result, exit};
use crate::job::{Jitter, Job, Outcome, Renewal, unix_now};
use crate::metrics::{self, Sample};
use crate::output::FileId;
use crate::spec::{Shared, Spec};
use crate::transport::{TlsOptions, Transport};

/// Runs sync; returns the exit code (0, or [`exit::SYNC_FAILED`]). `loglevel` (cfssl's scale)
/// filters the text lines as gencert's summary is filtered ([`Outcome::shown_at`]); the line of
/// a failed spec or hook is always shown.
pub(crate) fn run(args: &SyncArgs, loglevel: u8) -> Result<u8> {
    let specs = spec_files(&args.dir)?;
    if let Some(path) = &args.metrics_file {
        metrics::check_target(path)?;
    }
    // A fleet-wide timer runs on hosts that have no pair to keep: nothing to do is a success,
    // said once, so that a directory emptied by mistake does not go unnoticed either.
    if specs.is_empty() {
        log::info!("{} holds no *.json spec: nothing to do", args.dir.display());
        if args.report == Some(ReportFormat::Json) {
            crate::output::print_report("[]\n")?;
        }
        return Ok(exit::OK);
    }
    let shared = Shared {
        renewal: Renewal {
            renew_before: args.renew_before,
            force: args.force,
            reuse_key: false,
            exec: None,
            exec_timeout: args.exec_timeout,
            // One window for the whole run: see Jitter.
            jitter: args.jitter.map(Jitter::starting_now),
            retries: args.retries,
            lock_wait: args.lock_timeout,
        },
        allow_plaintext: args.allow_plaintext,
    };
    let (mut jobs, named) = read_specs(specs, &shared);
    refuse_shared_files(&mut jobs);
    // Resolved once: every output and the metrics file are compared with it.
    let spec_dir = args.dir.canonicalize().unwrap_or_else(|_| args.dir.clone());
    refuse_overwritten_inputs(&mut jobs, &spec_dir);
    if let Some(path) = &args.metrics_file {
        check_metrics_file(path, &jobs)?;
        if is_spec_name(path, &spec_dir) {
            return Err(Error::Usage(format!(
                "--metrics-file {} would be read as a spec by the next sync: write it outside {}",
                path.display(),
                args.dir.display()
            )));
        }
    }
    let results = run_jobs(&jobs, args);

    let mut failed_specs = Vec::new();
    let mut samples = Vec::new();
    let mut json = Vec::new();
    for (((path, _), result), named) in jobs.iter().zip(results).zip(named) {
        let name = spec_name(path);
        let ok = matches!(&result, Ok(outcome) if outcome.hook_error.is_none());
        if !ok {
            failed_specs.push(name.clone());
        }
        if args.report == Some(ReportFormat::Json) {
            let mut value = match &result {
                Ok(outcome) => outcome.to_json(),
                // The pair's paths as far as the spec names them, so that automation knows
                // which pair failed without reading the spec.
                Err(err) => serde_json::json!({"changed": false, "action": "failed",
                    "cert": named.cert.as_deref().map(|p| p.display().to_string()),
                    "key": named.key.as_deref().map(|p| p.display().to_string()),
                    "error": err.to_string(), "exit_code": err.exit_code()}),
            };
            value["spec"] = name.into();
            json.push(value);
        } else if let Some(line) = text_line(&name, &result, loglevel) {
            crate::output::print_report(&format!("{line}\n"))?;
        }
        if let Some(cert) = &named.cert {
            samples.push(Sample {
                name: metrics::series_name(cert),
                not_after: match &result {
                    Ok(outcome) => Some(outcome.not_after),
                    Err(_) => crate::inspect::not_after_in_place(cert),
                },
                success: ok,
                at: unix_now(),
            });
        }
    }
    if args.report == Some(ReportFormat::Json) {
        crate::output::print_report(&format!("{}\n", serde_json::Value::Array(json)))?;
    }
    if let Some(path) = &args.metrics_file {
        metrics::update(path, &samples)?;
    }
    if failed_specs.is_empty() {
        return Ok(exit::OK);
    }
    // The run's one error on stderr, as every failed run has (a JSON log collector gets it as
    // JSON); each spec's own error is on its line.
    let shown: Vec<&str> = failed_specs.iter().take(10).map(String::as_str).collect();
    let more = if failed_specs.len() > shown.len() {
        ", …"
    } else {
        ""
    };
    crate::logging::print_failure(
        &format!(
            "{} of {} specs failed: {}{more}",
            failed_specs.len(),
            jobs.len(),
            shown.join(", ")
        ),
        exit::SYNC_FAILED,
    );
    Ok(exit::SYNC_FAILED)
}

/// A spec file and the job made from it, or why none could be.
type SpecJob = (PathBuf, Result<Job>);

/// The pair a spec names, read leniently (see [`Spec::path_named`]).
struct Named {
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
}

/// Each spec as a job (or the error that kept it from being one), with the pair it names, for
/// the metrics and the report. The paths are taken as soon as the spec is read: a spec that
/// does not parse, or then fails to become a job (a bad csr.json or profile), still gets its
/// failure into its certificate's metrics, and its report names the pair.
fn read_specs(specs: Vec<PathBuf>, shared: &Shared) -> (Vec<SpecJob>, Vec<Named>) {
    specs
        .into_iter()
        .map(|path| {
            let bytes = Spec::read(&path);
            let field = |name| (bytes.as_ref().ok()).and_then(|b| Spec::path_named(&path, b, name));
            let named = Named {
                cert: field("cert"),
                key: field("key"),
            };
            let job = crate::logging::for_spec(&spec_name(&path), || {
                (bytes.as_deref().map_err(Clone::clone))
                    .and_then(|bytes| Spec::parse(&path, bytes))
                    .and_then(|spec| spec.into_job(&path, shared))
            });
            if job.is_err() {
                // Read whatever the trust check said (a spec it refused was not read): only to
                // keep its CA's key from hooks.
                let raw = bytes.ok().or_else(|| {
                    crate::error::read_bounded(&path, crate::error::MAX_INPUT_BYTES)
                        .ok()
                        .flatten()
                });
                if let Some(config) = raw.and_then(|raw| Spec::path_named(&path, &raw, "config")) {
                    crate::profile::remember_env_leniently(&config);
                }
            }
            ((path, job), named)
        })
        .unzip()
}

/// Runs the jobs on `--parallel` workers (default: one per core), in spec order as workers
/// free up; returns each job's result in the same order. A spec that failed to become a job
/// keeps its error.
///
/// One client per distinct TLS setting, built by the first spec that is due (none when every
/// pair is up to date), so requests to one CA share connections; a bad CA file fails only its
/// specs.
fn run_jobs(jobs: &[SpecJob], args: &SyncArgs) -> Vec<Result<Outcome>> {
    let mut transports: HashMap<&TlsOptions, OnceLock<Result<Transport>>> = HashMap::new();
    for job in jobs.iter().filter_map(|(_, job)| job.as_ref().ok()) {
        transports.entry(&job.tls).or_default();
    }
    let results: Vec<Mutex<Option<Result<Outcome>>>> =
        jobs.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let workers = args
        .parallel
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    std::thread::scope(|scope| {
        for _ in 0..workers.clamp(1, jobs.len()) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((spec, job)) = jobs.get(i) else {
                        break;
                    };
                    let result = match job {
                        Err(err) => Err(err.clone()),
                        Ok(job) => crate::logging::for_spec(&spec_name(spec), || {
                            job.run(|| {
                                transports[&job.tls]
                                    .get_or_init(|| Transport::new(&job.tls, args.timeout))
                                    .as_ref()
                                    .map_err(Clone::clone)
                            })
                        }),
                    };
                    if let Ok(mut slot) = results[i].lock() {
                        *slot = Some(result);
                    }
                }
            });
        }
    });
    results
        .into_iter()
        .map(|slot| {
            (slot.into_inner().ok().flatten())
                .unwrap_or_else(|| Err(Error::Internal("spec was not run".into())))
        })
        .collect()
}

/// A spec's line in the text report, or `None` when `loglevel` hides it; a failed spec or
/// hook is always shown.
fn text_line(name: &str, result: &Result<Outcome>, loglevel: u8) -> Option<String> {
    let line = match result {
        Ok(outcome) => match &outcome.hook_error {
            Some(err) => Some(format!("{name}: {}; error: {err}", outcome.summary())),
            None => outcome
                .shown_at(loglevel)
                .then(|| format!("{name}: {}", outcome.summary())),
        },
        Err(err) => Some(format!("{name}: error: {err}")),
    };
    // One line per spec, whatever a spec's name or paths hold.
    line.map(|line| crate::logging::escape_controls(&line).into_owned())
}

/// Refuses a `--metrics-file` that is a spec or a file a spec writes: the metrics would
/// overwrite it after every run.
fn check_metrics_file(metrics: &Path, jobs: &[SpecJob]) -> Result<()> {
    let mut files: Vec<(PathBuf, String)> = Vec::new();
    for (spec, job) in jobs {
        let of_spec = |role: &str| format!("{role} of spec {}", spec_name(spec));
        files.push((spec.clone(), of_spec("the spec file")));
        let Ok(job) = job else { continue };
        let lock = job.destination.lock_file();
        let read_or_written = (job.destination.outputs().into_iter())
            .chain(lock.as_deref().map(|p| (p, "the pair's lock file")))
            .chain(job.input_files());
        files.extend(read_or_written.map(|(path, role)| (path.to_path_buf(), of_spec(role))));
    }
    let files: Vec<(&Path, &str)> = (files.iter())
        .map(|(path, role)| (path.as_path(), role.as_str()))
        .collect();
    crate::output::check_distinct(&[(metrics, "the metrics file (--metrics-file)")], &files)?;
    metrics::check_contents(metrics)
}

/// Fails every spec that writes a file another spec also writes. Two specs on one pair would
/// undo each other on every run (each finds the other's key, renews, and restarts its
/// service), and a key path that is another spec's certificate path loses the key.
fn refuse_shared_files(jobs: &mut [SpecJob]) {
    let mut writers: HashMap<PathBuf, Vec<usize>> = HashMap::new();
    for (i, (_, job)) in jobs.iter().enumerate() {
        if let Ok(job) = job {
            for file in job.destination.resolved_files() {
                let specs = writers.entry(file).or_default();
                if !specs.contains(&i) {
                    specs.push(i);
                }
            }
        }
    }
    let mut shared: Vec<(PathBuf, Vec<usize>)> = writers
        .into_iter()
        .filter(|(_, specs)| specs.len() > 1)
        .collect();
    shared.sort();
    for (file, specs) in shared {
        for &i in &specs {
            if jobs[i].1.is_err() {
                continue;
            }
            let others: Vec<String> = specs
                .iter()
                .filter(|&&j| j != i)
                .map(|&j| spec_name(&jobs[j].0))
                .collect();
            jobs[i].1 = Err(Error::input_file(
                &jobs[i].0,
                format!(
                    "writes {}, which spec {} also writes: give each spec its own files",
                    file.display(),
                    others.join(", ")
                ),
            ));
        }
    }
}

/// Fails every spec that writes a file another spec reads (the spec itself, its csr.json,
/// profile, auth key, CA or client files): the reader would find it replaced by a certificate
/// or a key, mid-run or on the next one. A spec writing its own inputs is refused when it
/// becomes a job ([`Spec::into_job`]).
fn refuse_overwritten_inputs(jobs: &mut [SpecJob], dir: &Path) {
    let mut readers: HashMap<FileId, Vec<(usize, &str)>> = HashMap::new();
    for (i, (spec, job)) in jobs.iter().enumerate() {
        readers
            .entry(FileId::of(spec))
            .or_default()
            .push((i, "the spec file"));
        // A spec's lock is what its run holds: another spec's key written there would take it.
        if let Some(lock) = job
            .as_ref()
            .ok()
            .and_then(|job| job.destination.lock_file())
        {
            readers
                .entry(FileId::of(&lock))
                .or_default()
                .push((i, "the pair's lock file"));
        }
        for (input, what) in job.iter().flat_map(Job::input_files) {
            readers
                .entry(FileId::of(input))
                .or_default()
                .push((i, what));
        }
    }
    let mut refused = Vec::new();
    for (i, (spec, job)) in jobs.iter().enumerate() {
        let Ok(job) = job else { continue };
        for (output, _) in job.destination.outputs() {
            if is_spec_name(output, dir) {
                refused.push((
                    i,
                    Error::input_file(
                        spec,
                        format!(
                            "writes {}, which the next sync would read as a spec: write it \
                             outside {}",
                            output.display(),
                            dir.display()
                        ),
                    ),
                ));
                break;
            }
            let mut readers = readers.get(&FileId::of(output)).into_iter().flatten();
            if let Some((j, what)) = readers.find(|(j, _)| *j != i) {
                refused.push((
                    i,
                    Error::input_file(
                        spec,
                        format!(
                            "writes {}, which is {what} of spec {}: give each spec its own files",
                            output.display(),
                            spec_name(&jobs[*j].0),
                        ),
                    ),
                ));
                break;
            }
        }
    }
    for (i, err) in refused {
        jobs[i].1 = Err(err);
    }
}

/// The `*.json` files in `dir`, sorted. Hidden files are not specs: an editor's backup or lock
/// file (`.#node.json`) or a spec moved aside as `.node.json` must not run.
fn spec_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::NotFound => "no such directory".to_string(),
            std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
            _ => e.to_string(),
        };
        Error::input_file(dir, format!("cannot read the spec directory: {why}"))
    })?;
    let mut specs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| named_as_spec(p) && p.is_file())
        .collect();
    specs.sort();
    Ok(specs)
}

/// Whether writing `path` would put a file that [`spec_files`] reads as a spec into `dir`
/// (canonical).
fn is_spec_name(path: &Path, dir: &Path) -> bool {
    let target = crate::output::write_target(path).unwrap_or_else(|_| path.to_path_buf());
    let target = crate::output::resolved(&target);
    named_as_spec(&target) && target.parent() == Some(dir)
}

/// Whether a file of this name is a spec: `*.json`, not hidden (an editor's backup or lock
/// file).
fn named_as_spec(path: &Path) -> bool {
    path.extension().is_some_and(|x| x == "json")
        && !(path.file_name()).is_some_and(|n| n.as_encoded_bytes().starts_with(b"."))
}

fn spec_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}
