//! The built-in Kubernetes signers: their rules for a CSR (checked before any key is made) and
//! the `certificates.k8s.io/v1` CertificateSigningRequest manifest for `kubectl apply -f -`.
//!
//! Rules from the Kubernetes documentation ("Certificate Signing Requests", Kubernetes signers):
//! `kube-apiserver-client-kubelet` wants O exactly `system:nodes`, CN `system:node:NAME`, no SANs,
//! usages key encipherment (optional), digital signature, client auth; `kubelet-serving` the
//! same subject, at least one DNS or IP SAN and no email or URI SAN, with server auth;
//! `kube-apiserver-client` client auth and nothing beyond digital signature and key encipherment.
//! A CSR that breaks them is denied by the API server only after it was submitted, far from the
//! file that caused it; linting here names the field.

use base64::Engine as _;

use crate::csr::{CertificateRequest, San};
use crate::error::{Error, Result};

/// A signer nodecert knows the rules of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Signer {
    ApiserverClient,
    KubeletClient,
    KubeletServing,
}

impl Signer {
    /// The built-in signer called `name`, if it is one.
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        match name {
            "kubernetes.io/kube-apiserver-client" => Some(Self::ApiserverClient),
            "kubernetes.io/kube-apiserver-client-kubelet" => Some(Self::KubeletClient),
            "kubernetes.io/kubelet-serving" => Some(Self::KubeletServing),
            _ => None,
        }
    }

    /// The usages nodecert asks for when none are given.
    pub(crate) fn default_usages(self) -> Vec<String> {
        let last = match self {
            Self::KubeletServing => "server auth",
            Self::ApiserverClient | Self::KubeletClient => "client auth",
        };
        ["digital signature", "key encipherment", last]
            .map(String::from)
            .to_vec()
    }

    /// Violations of this signer's rules by `request`, one sentence each.
    pub(crate) fn check_request(self, request: &CertificateRequest) -> Vec<String> {
        let mut problems = Vec::new();
        if matches!(self, Self::KubeletClient | Self::KubeletServing) {
            let orgs: Vec<&str> = request
                .names
                .iter()
                .map(|n| n.organization.as_str())
                .filter(|o| !o.is_empty())
                .collect();
            if orgs != ["system:nodes"] {
                problems.push(format!(
                    "names[].O must be exactly \"system:nodes\" (found {orgs:?})"
                ));
            }
            match request.common_name.strip_prefix("system:node:") {
                Some(node) if !node.is_empty() => {}
                _ => problems.push(format!(
                    "CN must be \"system:node:<node name>\" (found {:?})",
                    request.common_name
                )),
            }
        }
        let sans = request.sans();
        match self {
            Self::KubeletClient if !sans.is_empty() => {
                problems.push(format!(
                    "hosts must be empty for a client certificate (found {})",
                    request.hosts.join(", ")
                ));
            }
            Self::KubeletServing => {
                if !sans.iter().any(|s| matches!(s, San::Dns(_) | San::Ip(_))) {
                    problems.push("hosts needs at least one DNS name or IP address".into());
                }
                for san in sans
                    .iter()
                    .filter(|s| matches!(s, San::Email(_) | San::Uri(_)))
                {
                    problems.push(format!(
                        "hosts must not hold email or URI SANs (found {san})"
                    ));
                }
            }
            _ => {}
        }
        problems
    }

    /// Violations of this signer's rules by `usages`.
    pub(crate) fn check_usages(self, usages: &[String]) -> Vec<String> {
        let has = |u: &str| usages.iter().any(|x| x == u);
        let (needed, allowed): (&[&str], &[&str]) = match self {
            Self::KubeletServing => (&["digital signature", "server auth"], &["key encipherment"]),
            Self::KubeletClient => (&["digital signature", "client auth"], &["key encipherment"]),
            Self::ApiserverClient => (&["client auth"], &["digital signature", "key encipherment"]),
        };
        let mut problems: Vec<String> = needed
            .iter()
            .filter(|u| !has(u))
            .map(|u| format!("usages must include {u:?}"))
            .collect();
        for usage in usages
            .iter()
            .filter(|u| !needed.contains(&u.as_str()) && !allowed.contains(&u.as_str()))
        {
            problems.push(format!("usage {usage:?} is not allowed for this signer"));
        }
        problems
    }
}

/// The key usages the Kubernetes API accepts in a CertificateSigningRequest (`KeyUsage` in
/// certificates/v1): anything else, or a usage twice, and the API server refuses the manifest.
const API_USAGES: [&str; 23] = [
    "signing",
    "digital signature",
    "content commitment",
    "key encipherment",
    "key agreement",
    "data encipherment",
    "cert sign",
    "crl sign",
    "encipher only",
    "decipher only",
    "any",
    "server auth",
    "client auth",
    "code signing",
    "email protection",
    "s/mime",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "timestamping",
    "ocsp signing",
    "microsoft sgc",
    "netscape sgc",
];

/// Refuses usages the API server would refuse, whatever the signer: unknown names and repeats.
pub(crate) fn check_usage_names(usages: &[String]) -> Result<(), String> {
    for (i, usage) in usages.iter().enumerate() {
        if !API_USAGES.contains(&usage.as_str()) {
            return Err(format!(
                "{usage:?} is not a Kubernetes key usage (e.g. \"digital signature\", \
                 \"server auth\", \"client auth\")"
            ));
        }
        if usages[..i].contains(usage) {
            return Err(format!("{usage:?} is given twice"));
        }
    }
    Ok(())
}

/// Checks `request` against the signer `name`: one error line per violation, then an input error
/// naming `source`. A name that is not a built-in signer checks nothing, and says so.
pub(crate) fn lint_request(name: &str, request: &CertificateRequest, source: &str) -> Result<()> {
    let Some(signer) = Signer::from_name(name) else {
        log::warn!("--signer {name}: not a built-in Kubernetes signer, so nothing was checked");
        return Ok(());
    };
    report(name, source, signer.check_request(request))
}

/// Logs each problem and turns a non-empty list into one input error.
pub(crate) fn report(name: &str, source: &str, problems: Vec<String>) -> Result<()> {
    if problems.is_empty() {
        return Ok(());
    }
    for problem in &problems {
        log::error!("{source}: signer {name}: {problem}");
    }
    Err(Error::input(
        source,
        format!(
            "{} violation(s) of the {name} signer's rules (listed above)",
            problems.len()
        ),
    ))
}

/// What goes into the manifest.
pub(crate) struct Manifest<'a> {
    pub name: &'a str,
    pub csr_pem: &'a str,
    pub signer: &'a str,
    pub usages: &'a [String],
    pub expiration_seconds: Option<u64>,
}

impl Manifest<'_> {
    /// The manifest as JSON (which is also YAML), for `kubectl apply -f -`.
    pub(crate) fn to_json(&self) -> String {
        let mut spec = serde_json::json!({
            "request": base64::engine::general_purpose::STANDARD.encode(self.csr_pem),
            "signerName": self.signer,
            "usages": self.usages,
        });
        if let Some(seconds) = self.expiration_seconds {
            spec["expirationSeconds"] = seconds.into();
        }
        let manifest = serde_json::json!({
            "apiVersion": "certificates.k8s.io/v1",
            "kind": "CertificateSigningRequest",
            "metadata": {"name": self.name},
            "spec": spec,
        });
        serde_json::to_string_pretty(&manifest).unwrap_or_default()
    }
}

/// The smallest `expirationSeconds` the API server accepts.
pub(crate) const MIN_EXPIRATION_SECONDS: u64 = 600;

/// Why `name` is not an object name Kubernetes accepts (an RFC 1123 DNS subdomain: at most 253
/// characters, dot-separated labels of `a-z 0-9 -` that start and end with a letter or digit), or
/// `Ok` when it is one. `kubectl apply` would refuse the manifest; this says so before a key is
/// made.
pub(crate) fn check_object_name(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() || name.len() > 253 {
        return Err(format!(
            "{name:?} must be 1 to 253 characters (it has {})",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '.'))
    {
        return Err(format!(
            "{name:?} has {c:?}: use lower-case letters, digits, '-' and '.'"
        ));
    }
    let alphanumeric = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if name
        .split('.')
        .any(|label| !alphanumeric(label.chars().next()) || !alphanumeric(label.chars().last()))
    {
        return Err(format!(
            "{name:?}: each dot-separated part must start and end with a letter or digit"
        ));
    }
    Ok(())
}

/// An object name Kubernetes accepts (a DNS subdomain) made from a CN: lower case, anything
/// else than `a-z 0-9 . -` becomes `-`, trimmed to start and end with an alphanumeric.
pub(crate) fn object_name(common_name: &str) -> Option<String> {
    let mapped: String = common_name
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    // Each dot-separated part must start and end with a letter or digit; empty parts go.
    let labels: Vec<&str> = mapped
        .split('.')
        .map(|label| label.trim_matches(|c: char| !c.is_ascii_alphanumeric()))
        .filter(|label| !label.is_empty())
        .collect();
    let mut name: String = labels.join(".").chars().take(253).collect();
    while name.ends_with(|c: char| !c.is_ascii_alphanumeric()) {
        name.pop();
    }
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: &str) -> CertificateRequest {
        CertificateRequest::parse(json.as_bytes(), "csr.json").unwrap()
    }

    #[test]
    fn kubelet_client_rules() {
        let good = request(r#"{"CN":"system:node:w1","names":[{"O":"system:nodes"}]}"#);
        assert!(Signer::KubeletClient.check_request(&good).is_empty());
        let bad = request(r#"{"CN":"w1","hosts":["w1"],"names":[{"O":"system:nodes"},{"O":"x"}]}"#);
        let problems = Signer::KubeletClient.check_request(&bad);
        assert_eq!(problems.len(), 3, "{problems:?}");
    }

    #[test]
    fn kubelet_serving_rules() {
        let good = request(
            r#"{"CN":"system:node:w1","hosts":["w1","10.0.0.1"],"names":[{"O":"system:nodes"}]}"#,
        );
        assert!(Signer::KubeletServing.check_request(&good).is_empty());
        let bad =
            request(r#"{"CN":"system:node:w1","hosts":["a@b.c"],"names":[{"O":"system:nodes"}]}"#);
        let problems = Signer::KubeletServing.check_request(&bad);
        assert!(
            problems.iter().any(|p| p.contains("at least one DNS")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.contains("email:a@b.c")),
            "{problems:?}"
        );
    }

    #[test]
    fn usage_rules() {
        let usages = |u: &[&str]| u.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(
            Signer::KubeletServing
                .check_usages(&Signer::KubeletServing.default_usages())
                .is_empty()
        );
        assert!(
            Signer::KubeletClient
                .check_usages(&usages(&["digital signature", "client auth"]))
                .is_empty()
        );
        assert_eq!(
            Signer::KubeletClient
                .check_usages(&usages(&["digital signature", "server auth"]))
                .len(),
            2
        );
        assert_eq!(
            Signer::ApiserverClient
                .check_usages(&usages(&["client auth", "cert sign"]))
                .len(),
            1
        );
    }

    #[test]
    fn object_name_check_follows_rfc_1123_subdomains() {
        for good in [
            "node1",
            "system-node-w1.example.com",
            "a",
            "0-9",
            &"a".repeat(253),
        ] {
            assert_eq!(check_object_name(good), Ok(()), "{good}");
        }
        for (bad, why) in [
            ("", "1 to 253"),
            (&"a".repeat(254), "1 to 253"),
            ("Node1", "'N'"),
            ("system:node:w1", "':'"),
            ("-node", "start and end"),
            ("node-", "start and end"),
            ("a..b", "start and end"),
            ("a.-b", "start and end"),
        ] {
            let err = check_object_name(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
        // What object_name makes from a CN always passes.
        for cn in [
            "system:node:W1.Example",
            "--x--",
            "ümlaut.node",
            "a.:b",
            "x..y",
            "..",
        ] {
            if let Some(name) = object_name(cn) {
                assert_eq!(check_object_name(&name), Ok(()), "{cn} -> {name}");
            }
        }
    }

    #[test]
    fn object_names() {
        assert_eq!(
            object_name("system:node:Worker_1").as_deref(),
            Some("system-node-worker-1")
        );
        assert_eq!(object_name("*.example.com").as_deref(), Some("example.com"));
        assert_eq!(object_name(":::"), None);
    }
}
