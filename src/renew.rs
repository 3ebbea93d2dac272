//! Whether an existing certificate/key pair can stay: the decision behind `--renew-before`.
//!
//! A pair stays only when every check passes, so a run never keeps something a careful operator
//! would replace: both files exist and parse, the key is the certificate's key, the certificate
//! is valid now and for longer than the threshold (see [`Threshold`]), and it still matches the
//! request (CN, subject names, exactly the requested SANs, the key type, and the pinned CA as
//! issuer when one is given).
//! The first failing check is the reason reported.

use std::path::Path;
use std::time::Duration;

use x509_parser::prelude::{FromDer, X509Certificate};

use crate::csr::{CertificateRequest, San};
use crate::error::Result;
use crate::keygen::PrivateKey;
use crate::verify::IssuerCheck;

/// What a run did or will do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// There was no usable certificate at the path.
    Issued,
    /// A certificate was replaced.
    Renewed,
    /// The existing pair stays.
    Unchanged,
}

impl Action {
    /// The word used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Issued => "issued",
            Self::Renewed => "renewed",
            Self::Unchanged => "unchanged",
        }
    }
}

/// The outcome of inspecting the existing pair.
#[derive(Debug)]
pub(crate) enum Decision {
    /// Keep the pair.
    Keep {
        reason: String,
        serial: String,
        not_after: i64,
    },
    /// Get a new certificate (`action` is `Issued` or `Renewed`).
    Replace { action: Action, reason: String },
}

/// What the existing pair must satisfy.
pub(crate) struct Wanted<'a> {
    pub request: &'a CertificateRequest,
    /// The pinned CA certificates (DER), if any: one of them must have issued the certificate
    /// (its name as issuer, its key verifying the signature).
    pub pinned_cas: Option<&'a [Vec<u8>]>,
    pub renew_before: Duration,
    /// With `--reuse-key` the key type is whatever the existing key is.
    pub reuse_key: bool,
}

/// Inspects `cert_path` and `key_path` against `wanted` at `now` (Unix seconds).
///
/// A file of the pair that is there but cannot be read (another user's key) is an error, not a
/// reason to replace the pair ([`crate::output::unreadable`]).
pub(crate) fn decide(
    cert_path: &Path,
    key_path: &Path,
    wanted: &Wanted<'_>,
    now: i64,
) -> Result<Decision> {
    let Some(cert_pem) = read_existing(cert_path)? else {
        return Ok(Decision::Replace {
            action: Action::Issued,
            reason: format!("no certificate at {}", cert_path.display()),
        });
    };
    let key_pem = read_existing(key_path)?;
    Ok(inspect(
        cert_path, &cert_pem, key_path, key_pem, wanted, now,
    ))
}

/// The text of one file of the pair; `None` when there is no such file. A file over
/// [`crate::error::MAX_INPUT_BYTES`] reads as empty (and so fails to parse). Read as it is
/// written: through a link of this user's or root's only ([`crate::output::write_target`]),
/// and a regular file only, so that a FIFO put there fails the run instead of hanging it.
fn read_existing(path: &Path) -> Result<Option<zeroize::Zeroizing<String>>> {
    let target = crate::output::write_target(path)?;
    match crate::error::read_regular_bounded(&target, crate::error::MAX_INPUT_BYTES) {
        Ok(bytes) => Ok(Some(zeroize::Zeroizing::new(
            bytes.map_or_else(String::new, |bytes| {
                String::from_utf8_lossy(&zeroize::Zeroizing::new(bytes)).into_owned()
            }),
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) if e.raw_os_error() == Some(nix::libc::EACCES) => {
            Err(crate::output::unreadable(path, &e))
        }
        Err(e) => Err(crate::error::Error::output(
            path,
            format!(
                "cannot read it ({e}), and what cannot be read is not replaced: fix or move it aside"
            ),
        )),
    }
}

/// How the certificate `pem` differs from `request` in what renewal compares (subject names,
/// SANs), if it does: the reason the next `--renew-before` run would give.
pub(crate) fn request_change(pem: &str, request: &CertificateRequest) -> Option<String> {
    let block = pem::parse(pem).ok()?;
    let (_, cert) = X509Certificate::from_der(block.contents()).ok()?;
    subject_change(&cert, request).or_else(|| san_change(&cert, request))
}

/// `check` on the certificate at `cert_path`, when the key at `key_path` is its key (both
/// there, readable and sound); `None` otherwise.
fn with_pair<T>(
    cert_path: &Path,
    key_path: &Path,
    check: impl FnOnce(&X509Certificate<'_>) -> Option<T>,
) -> Option<T> {
    let (Ok(Some(cert_pem)), Ok(Some(key_pem))) =
        (read_existing(cert_path), read_existing(key_path))
    else {
        return None;
    };
    let block = pem::parse(cert_pem.as_bytes()).ok()?;
    let (_, cert) = X509Certificate::from_der(block.contents()).ok()?;
    let key = PrivateKey::from_pem(&key_pem).ok()?;
    (key.spki_der() == cert.public_key().raw)
        .then(|| check(&cert))
        .flatten()
}

/// Whether the certificate at `cert_path` and the key at `key_path` are a pair that one of
/// `pinned_cas` issued (its signature checked) for the request's CN, at any time: one that no
/// one without the CA's auth key could have put there, whoever owns the files.
pub(crate) fn vouched_pair(
    cert_path: &Path,
    key_path: &Path,
    request: &CertificateRequest,
    pinned_cas: &[Vec<u8>],
) -> bool {
    let wanted: Vec<&str> = Some(request.common_name.as_str())
        .filter(|cn| !cn.is_empty())
        .into_iter()
        .collect();
    with_pair(cert_path, key_path, |cert| {
        let common_names: Vec<&str> = (cert.subject().iter_common_name())
            .filter_map(|cn| cn.as_str().ok())
            .filter(|cn| !cn.is_empty())
            .collect();
        let pinned = matches!(
            crate::verify::issuer_of(cert, pinned_cas),
            Ok(IssuerCheck::Pinned { .. })
        );
        (pinned && common_names == wanted).then_some(())
    })
    .is_some()
}

/// The certificate's not-after when the certificate at `cert_path` and the key at `key_path`
/// are a working pair (the key is the certificate's, and the certificate has not expired).
pub(crate) fn working_pair_not_after(cert_path: &Path, key_path: &Path) -> Option<i64> {
    with_pair(cert_path, key_path, |cert| {
        let not_after = cert.validity().not_after.timestamp();
        (not_after > crate::job::unix_now()).then_some(not_after)
    })
}

/// Refuses to break a working pair from the side: `genkey -bare NAME` replacing the key of
/// NAME.pem (`new_key` None: a new key is never the old one), or `sign` writing NAME.pem for
/// another key than NAME-key.pem's (`new_key`: the CSR's). cfssljson would write
/// either and leave a certificate and key that no longer go together.
///
/// A private key nodecert cannot read (encrypted, for nginx's `ssl_password_file`; a TPM's
/// `TSS2 PRIVATE KEY`; a kind it does not use) beside a valid certificate may be that
/// certificate's: it cannot tell, so it refuses, unless the CSR is for the certificate's own key.
pub(crate) fn check_pair_survives(
    cert_path: &Path,
    key_path: &Path,
    new_key: Option<&[u8]>,
) -> Result<()> {
    let Ok(Some(cert_pem)) = read_existing(cert_path) else {
        return Ok(());
    };
    let Some(cert_key) = valid_certificate_key(&cert_pem) else {
        return Ok(());
    };
    // A key beside a valid certificate that cannot be read (another user's 0600 key) cannot be
    // told apart from the pair's own: refused, as a renewal refuses it.
    let Some(key_pem) = read_existing(key_path)? else {
        return Ok(());
    };
    // A certificate for the key the one in place has breaks nothing, whatever the key file is.
    if new_key == Some(cert_key.as_slice()) {
        return Ok(());
    }
    let what = match PrivateKey::from_pem(&key_pem) {
        Ok(key) if key.spki_der() == cert_key => "a working pair",
        Ok(_) => return Ok(()),
        // Not a PEM private key at all (garbage, empty): no pair to break.
        Err(_) if !key_pem.contains("PRIVATE KEY-----") => return Ok(()),
        Err(_) => {
            "maybe a working pair (a private key nodecert cannot read: encrypted, or of \
                   a kind it does not use)"
        }
    };
    Err(match new_key {
        Some(_) => crate::error::Error::output(
            cert_path,
            format!(
                "is the certificate of {}, {what}, and the CSR is for another key: the new \
                 certificate would break the pair; write it to another path, or move the pair \
                 aside",
                key_path.display()
            ),
        ),
        None => crate::error::Error::output(
            key_path,
            format!(
                "is the key of {}, {what} a new key would break: move {} aside first (to \
                 re-key in place, as with cfssl genkey then sign), or write the new key \
                 elsewhere",
                cert_path.display(),
                cert_path.display()
            ),
        ),
    })
}

/// The public key (SubjectPublicKeyInfo) of the certificate in `pem`, when it has not expired.
fn valid_certificate_key(pem: &str) -> Option<Vec<u8>> {
    let block = pem::parse(pem.as_bytes()).ok()?;
    let (_, cert) = X509Certificate::from_der(block.contents()).ok()?;
    (cert.validity().not_after.timestamp() > crate::job::unix_now())
        .then(|| cert.public_key().raw.to_vec())
}

/// [`decide`] once the files are read: the first check the pair fails, or why it stays.
fn inspect(
    cert_path: &Path,
    cert_pem: &str,
    key_path: &Path,
    key_pem: Option<zeroize::Zeroizing<String>>,
    wanted: &Wanted<'_>,
    now: i64,
) -> Decision {
    let replace = |reason: String| Decision::Replace {
        action: Action::Renewed,
        reason,
    };
    let Ok(block) = pem::parse(cert_pem) else {
        return replace(format!("{} is not a PEM certificate", cert_path.display()));
    };
    let Ok((_, cert)) = X509Certificate::from_der(block.contents()) else {
        return replace(format!("{} does not parse", cert_path.display()));
    };
    let key = match key_pem {
        None => return replace(format!("no key at {}", key_path.display())),
        Some(text) => match PrivateKey::from_pem(&text) {
            Ok(key) => key,
            Err(e) => return replace(format!("{} is unusable: {e}", key_path.display())),
        },
    };
    if cert.public_key().raw != key.spki_der() {
        return replace("the key does not match the certificate".into());
    }
    let not_before = cert.validity().not_before.timestamp();
    let not_after = cert.validity().not_after.timestamp();
    if now < not_before {
        return replace("the certificate is not valid yet".into());
    }
    let left = not_after - now;
    let threshold = Threshold::new(wanted.renew_before, not_after - not_before);
    if left <= 0 {
        return replace("the certificate has expired".into());
    }
    if left <= threshold.seconds {
        return replace(expiry(left, &threshold, "under"));
    }
    if let Some(reason) = subject_change(&cert, wanted.request) {
        return replace(reason);
    }
    if let Some(reason) = san_change(&cert, wanted.request) {
        return replace(reason);
    }
    if !wanted.reuse_key && key.spec() != wanted.request.key {
        return replace(format!(
            "key type changed: {} on disk, {} requested",
            key.spec(),
            wanted.request.key
        ));
    }
    if let Some(pinned_cas) = wanted.pinned_cas {
        match crate::verify::issuer_of(&cert, pinned_cas) {
            // A CA whose own certificate has expired: nothing verifies the pair any more (the
            // old root of a rotation, left to lapse in a bundle that holds the new one too).
            Ok(IssuerCheck::Pinned { ca, ca_not_after }) if now > ca_not_after => {
                return replace(format!(
                    "its CA \"{ca}\" expired at {} (as the pinned file has it)",
                    crate::inspect::rfc3339(ca_not_after)
                ));
            }
            Ok(IssuerCheck::Pinned { .. } | IssuerCheck::NothingPinned) => {}
            Ok(IssuerCheck::NotInPin { issuer }) => {
                return replace(format!("issued by \"{issuer}\", not by a pinned CA"));
            }
            // The name of a pinned CA without its signature: the root was re-keyed under the
            // same name, and the pair no longer chains to what the node trusts.
            Err(_) => {
                return replace(format!(
                    "issued under the pinned CA's name \"{}\" but not signed by its key (re-keyed CA?)",
                    cert.issuer()
                ));
            }
        }
    }
    Decision::Keep {
        reason: expiry(left, &threshold, "over"),
        serial: crate::verify::serial_hex(&cert),
        not_after,
    }
}

/// When a certificate is due: `--renew-before`, unless that is not shorter than the
/// certificate's whole lifetime. Then every run would renew (a CA profile issuing 30-day
/// certificates under a fleet-wide `720h`: a new certificate, a CA request and a service restart
/// on every cron run), so the certificate is due when a third of its lifetime is left instead,
/// the choice cert-manager makes for the same mistake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Threshold {
    /// Renew when this many seconds or fewer are left.
    pub seconds: i64,
    /// The lifetime, when `--renew-before` was not shorter than it and was replaced.
    pub replaced_for_lifetime: Option<i64>,
    renew_before: i64,
}

impl Threshold {
    /// The threshold for a certificate valid for `lifetime` seconds (not-after minus not-before).
    pub(crate) fn new(renew_before: Duration, lifetime: i64) -> Self {
        let renew_before = i64::try_from(renew_before.as_secs()).unwrap_or(i64::MAX);
        if lifetime > 0 && renew_before >= lifetime {
            Self {
                seconds: lifetime / 3,
                replaced_for_lifetime: Some(lifetime),
                renew_before,
            }
        } else {
            Self {
                seconds: renew_before,
                replaced_for_lifetime: None,
                renew_before,
            }
        }
    }

    /// `--renew-before` as given, in seconds (saturated).
    pub(crate) fn renew_before(&self) -> i64 {
        self.renew_before
    }
}

impl std::fmt::Display for Threshold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Exact, unlike a time left: `--renew-before 90m` is not to be read back as `1h`.
        match self.replaced_for_lifetime {
            None => f.write_str(&exact(self.seconds)),
            Some(lifetime) => write!(
                f,
                "{}, a third of its {} lifetime ({} {} is not shorter than the lifetime)",
                exact(self.seconds),
                exact(lifetime),
                crate::logging::setting("--renew-before"),
                exact(self.renew_before)
            ),
        }
    }
}

/// `expires in 9d, under 30d` (`word`: under or over); to the second when the rounded figures
/// would read the same (`expires in 364d23h55m2s, under 364d23h58m`).
fn expiry(left: i64, threshold: &Threshold, word: &str) -> String {
    if threshold.replaced_for_lifetime.is_none() && human(left) == human(threshold.seconds) {
        return format!(
            "expires in {}, {word} {}",
            exact(left),
            exact(threshold.seconds)
        );
    }
    format!("expires in {}, {word} {threshold}", human(left))
}

/// `364d23h55m2s`: every non-zero unit.
pub(crate) fn exact(seconds: i64) -> String {
    let parts = [
        (seconds / 86_400, "d"),
        (seconds % 86_400 / 3_600, "h"),
        (seconds % 3_600 / 60, "m"),
        (seconds % 60, "s"),
    ];
    let text: String = (parts.iter())
        .filter(|(n, _)| *n != 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    if text.is_empty() { "0s".into() } else { text }
}

/// `9d`, `20h`, `45m`: the largest whole unit, for reasons a human reads.
pub(crate) fn human(seconds: i64) -> String {
    match seconds {
        s if s >= 86_400 => format!("{}d", s / 86_400),
        s if s >= 3_600 => format!("{}h", s / 3_600),
        s if s >= 60 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

fn subject_change(cert: &X509Certificate<'_>, request: &CertificateRequest) -> Option<String> {
    let subject = cert.subject();
    let values = |iter: &mut dyn Iterator<Item = &x509_parser::x509::AttributeTypeAndValue<'_>>| {
        let mut v: Vec<String> = iter
            .filter_map(|a| a.as_str().ok().map(str::to_string))
            .collect();
        v.sort();
        v
    };
    let wanted = |pick: fn(&crate::csr::Name) -> &String| {
        let mut v: Vec<String> = request
            .names
            .iter()
            .map(pick)
            .filter(|s| !s.is_empty())
            .cloned()
            .collect();
        v.sort();
        v
    };
    let cn = values(&mut subject.iter_common_name());
    let want_cn: Vec<String> = Some(request.common_name.clone())
        .filter(|s| !s.is_empty())
        .into_iter()
        .collect();
    if cn != want_cn {
        return Some(format!(
            "CN changed: {:?} on disk, {:?} requested",
            cn.join(","),
            request.common_name
        ));
    }
    let checks: [(&str, Vec<String>, Vec<String>); 5] = [
        (
            "C",
            values(&mut subject.iter_country()),
            wanted(|n| &n.country),
        ),
        (
            "ST",
            values(&mut subject.iter_state_or_province()),
            wanted(|n| &n.province),
        ),
        (
            "L",
            values(&mut subject.iter_locality()),
            wanted(|n| &n.locality),
        ),
        (
            "O",
            values(&mut subject.iter_organization()),
            wanted(|n| &n.organization),
        ),
        (
            "OU",
            values(&mut subject.iter_organizational_unit()),
            wanted(|n| &n.organizational_unit),
        ),
    ];
    // serialNumber always (cfssl keeps it: the CSR's subject is the certificate's); E only when
    // the certificate carries it at all: the 2016 multirootca drops it, and a pair must not be
    // renewed on every run for what its CA leaves out.
    let serial_number = (
        "serialNumber",
        values(&mut subject.iter_by_oid(&x509_parser::oid_registry::OID_X509_SERIALNUMBER)),
        Some(request.serial_number.clone())
            .filter(|s| !s.is_empty())
            .into_iter()
            .collect(),
    );
    let email = ("E", values(&mut subject.iter_email()), wanted(|n| &n.email));
    let carried = [serial_number]
        .into_iter()
        .chain(Some(email).filter(|(_, have, _)| !have.is_empty()));
    for (name, have, want) in checks.into_iter().chain(carried) {
        if have != want {
            return Some(format!(
                "subject {name} changed: {have:?} on disk, {want:?} requested"
            ));
        }
    }
    None
}

fn san_change(cert: &X509Certificate<'_>, request: &CertificateRequest) -> Option<String> {
    let have: Vec<String> = match crate::verify::certificate_sans(cert) {
        Ok(sans) => sans.iter().map(normalise).collect(),
        Err(_) => return Some("the certificate's SAN extension is malformed".into()),
    };
    let want: Vec<String> = request.sans().iter().map(normalise).collect();
    let missing: Vec<&String> = want.iter().filter(|w| !have.contains(w)).collect();
    let extra: Vec<&String> = have.iter().filter(|h| !want.contains(h)).collect();
    match (missing.is_empty(), extra.is_empty()) {
        (true, true) => None,
        (false, _) => Some(format!(
            "SANs changed: {} requested, not in the certificate",
            join(&missing)
        )),
        (true, false) => Some(format!(
            "SANs changed: {} in the certificate, no longer requested",
            join(&extra)
        )),
    }
}

fn join(items: &[&String]) -> String {
    items
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn normalise(san: &San) -> String {
    match san {
        San::Dns(v) => format!("DNS:{}", v.to_ascii_lowercase()),
        San::Email(v) => format!("email:{}", v.to_ascii_lowercase()),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations() {
        assert_eq!(human(9 * 86_400 + 5), "9d");
        assert_eq!(human(720 * 3600), "30d");
        assert_eq!(human(7200), "2h");
        assert_eq!(human(59), "59s");
    }

    #[test]
    fn a_threshold_not_shorter_than_the_lifetime_becomes_a_third_of_it() {
        let day = 86_400;
        let thirty_days = Duration::from_secs(30 * day as u64);
        // Shorter than the lifetime: as asked.
        let kept = Threshold::new(thirty_days, 365 * day);
        assert_eq!((kept.seconds, kept.replaced_for_lifetime), (30 * day, None));
        assert_eq!(kept.to_string(), "30d");
        // Equal to or longer than the lifetime: every run would renew.
        for lifetime in [30 * day, 7 * day] {
            let t = Threshold::new(thirty_days, lifetime);
            assert_eq!(t.seconds, lifetime / 3);
            assert_eq!(t.replaced_for_lifetime, Some(lifetime));
        }
        assert_eq!(
            Threshold::new(thirty_days, 30 * day).to_string(),
            "10d, a third of its 30d lifetime (--renew-before 30d is not shorter than the lifetime)"
        );
        // Said exactly: 90m is not 1h, nor a third of 20m 6m.
        assert_eq!(
            Threshold::new(Duration::from_secs(5400), 365 * day).to_string(),
            "1h30m"
        );
        assert_eq!(
            Threshold::new(thirty_days, 1200).to_string(),
            "6m40s, a third of its 20m lifetime (--renew-before 30d is not shorter than the lifetime)"
        );
        // A zero threshold stays zero; a nonsensical lifetime changes nothing.
        assert_eq!(Threshold::new(Duration::ZERO, 30 * day).seconds, 0);
        assert_eq!(Threshold::new(thirty_days, 0).seconds, 30 * day);
    }
}
