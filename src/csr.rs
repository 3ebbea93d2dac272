//! cfssl's csr.json (`csr.CertificateRequest`) and the PKCS#10 request built from it.
//!
//! Parsing follows Go's `encoding/json` as cfssl uses it: keys match case-insensitively, unknown
//! keys are ignored, `null` means absent. Where cfssl silently accepts nonsense (an empty host, a
//! host with a stray space, an `rsa` key with no size) nodecert refuses with the field named,
//! because a certificate issued from it would be wrong in a way nobody notices until it fails.

use std::net::IpAddr;

use serde_json::{Map, Value};

use crate::der;
use crate::error::{Error, Result};
use crate::keygen::{KeySpec, PrivateKey};

/// A parsed csr.json.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CertificateRequest {
    /// Subject common name (`CN`).
    pub common_name: String,
    /// Subject attributes (`names`), in file order.
    pub names: Vec<Name>,
    /// Requested subject alternative names (`hosts`), verbatim.
    pub hosts: Vec<String>,
    /// The key to generate (`key`); cfssl's ECDSA P-256 when absent.
    pub key: KeySpec,
    /// Subject serialNumber attribute (`serialnumber`).
    pub serial_number: String,
}

impl Default for KeySpec {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// One entry of csr.json's `names`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Name {
    pub country: String,
    pub province: String,
    pub locality: String,
    pub organization: String,
    pub organizational_unit: String,
    pub email: String,
    /// `OID: {"1.2.3.4": "value"}`: extra attributes, in key order.
    pub oids: Vec<(Vec<u64>, String)>,
}

/// A subject alternative name, classified as cfssl classifies a host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum San {
    Dns(String),
    Email(String),
    Ip(IpAddr),
    Uri(String),
}

impl San {
    /// Classifies a `hosts` entry in cfssl's order: an IP address, an email address, a URI (what
    /// Go's `url.ParseRequestURI` accepts: `spiffe://td/x`, `urn:uuid:…`, `/path`, and also
    /// `name:port`, as cfssl does), otherwise a DNS name. An IPv4-mapped IPv6 address is its IPv4
    /// address, as Go writes it into the certificate.
    pub fn classify(host: &str) -> Self {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Self::Ip(ip.to_canonical());
        }
        if let Some(address) = email_address(host) {
            return Self::Email(address);
        }
        if is_uri(host) {
            return Self::Uri(host.to_string());
        }
        Self::Dns(host.to_string())
    }
}

impl San {
    /// The SAN a parsed GeneralName is, for the kinds cfssl issues (DNS, email, IP, URI).
    pub fn from_general_name(name: &x509_parser::extensions::GeneralName<'_>) -> Option<Self> {
        use x509_parser::extensions::GeneralName;
        Some(match name {
            GeneralName::DNSName(v) => Self::Dns(v.to_string()),
            GeneralName::RFC822Name(v) => Self::Email(v.to_string()),
            GeneralName::URI(v) => Self::Uri(v.to_string()),
            GeneralName::IPAddress(bytes) => match bytes.len() {
                4 => Self::Ip(IpAddr::from(<[u8; 4]>::try_from(*bytes).ok()?)),
                16 => Self::Ip(IpAddr::from(<[u8; 16]>::try_from(*bytes).ok()?)),
                _ => return None,
            },
            _ => return None,
        })
    }
}

impl std::fmt::Display for San {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Dns(v) => write!(f, "DNS:{v}"),
            Self::Email(v) => write!(f, "email:{v}"),
            Self::Ip(v) => write!(f, "IP:{v}"),
            Self::Uri(v) => write!(f, "URI:{v}"),
        }
    }
}

impl CertificateRequest {
    /// Refuses a request (read from `source`, overrides applied) with neither CN nor hosts: the
    /// certificate would name nothing.
    pub fn check_names_something(&self, source: &str) -> Result<()> {
        if self.common_name.is_empty() && self.hosts.is_empty() {
            return Err(Error::input(
                source,
                "has neither CN nor hosts, so the certificate would name nothing: set CN or \
                 hosts (or -cn / -hostname)",
            ));
        }
        Ok(())
    }

    /// Parses csr.json bytes. `source` names the file in errors (a path, or `<stdin>`).
    pub fn parse(bytes: &[u8], source: &str) -> Result<Self> {
        let root = json_object(bytes, source, "{\"CN\":…,\"hosts\":[…]}")?;
        unambiguous(
            &root,
            &["CN", "names", "hosts", "key", "ca", "serialnumber"],
        )
        .map_err(|d| Error::input(source, d))?;
        if field(&root, "ca").is_some_and(|v| !v.is_null()) {
            return Err(Error::field(
                source,
                "ca",
                "is only for creating a CA (cfssl gencert -initca); remove it",
            ));
        }
        let string = |name| string_field(&root, name).map_err(|d| Error::field(source, name, d));
        // Fields in this order, so that the first bad one in the file's usual order is named.
        Ok(Self {
            common_name: string("CN")?,
            serial_number: string("serialnumber")?,
            names: parse_names(&root, source)?,
            hosts: parse_hosts(&root, source)?,
            key: parse_key(&root, source)?,
        })
    }

    /// The requested SANs, classified.
    pub fn sans(&self) -> Vec<San> {
        self.hosts.iter().map(|h| San::classify(h)).collect()
    }

    /// The subject as Go's `pkix.Name.ToRDNSequence` writes what cfssl builds from csr.json:
    /// C, ST, L, O, OU (each type one RDN of all its values), CN, serialNumber; then, per
    /// `names` entry, each `OID` attribute and the `E` address as RDNs of their own. A standard
    /// type that also appears as an extra attribute is left to the extra one, as in Go.
    pub fn subject_der(&self) -> Vec<u8> {
        let extras: Vec<(&[u64], &str)> = self
            .names
            .iter()
            .flat_map(|n| {
                n.oids
                    .iter()
                    .map(|(oid, value)| (oid.as_slice(), value.as_str()))
                    .chain(
                        Some((oid::EMAIL_ADDRESS, n.email.as_str())).filter(|(_, e)| !e.is_empty()),
                    )
            })
            .collect();
        let attributes: [(&[u64], Vec<&str>); 7] = [
            (oid::COUNTRY, self.values(|n| &n.country)),
            (oid::PROVINCE, self.values(|n| &n.province)),
            (oid::LOCALITY, self.values(|n| &n.locality)),
            (oid::ORGANIZATION, self.values(|n| &n.organization)),
            (
                oid::ORGANIZATIONAL_UNIT,
                self.values(|n| &n.organizational_unit),
            ),
            (oid::COMMON_NAME, vec![self.common_name.as_str()]),
            (oid::SERIAL_NUMBER, vec![self.serial_number.as_str()]),
        ];
        let mut rdns = Vec::new();
        for (attribute, values) in attributes {
            if extras.iter().any(|(extra, _)| *extra == attribute) {
                continue;
            }
            let avas: Vec<Vec<u8>> = values
                .into_iter()
                .filter(|v| !v.is_empty())
                .map(|v| der::sequence(&[&der::oid(attribute), &der::directory_string(v)]))
                .collect();
            if !avas.is_empty() {
                rdns.push(der::set_of(avas));
            }
        }
        for (attribute, value) in extras {
            let ava = der::sequence(&[&der::oid(attribute), &der::directory_string(value)]);
            rdns.push(der::set_of(vec![ava]));
        }
        der::tlv(der::tag::SEQUENCE, &rdns.concat())
    }

    /// The PKCS#10 CertificationRequest (RFC 2986), DER, signed by `key`. SANs go into an
    /// extensionRequest attribute in Go's fixed order: DNS, email, IP, URI.
    pub fn to_csr_der(&self, key: &PrivateKey) -> Result<Vec<u8>> {
        let attributes = match san_extension(&self.sans()) {
            None => Vec::new(),
            Some(extension) => der::sequence(&[
                &der::oid(oid::EXTENSION_REQUEST),
                &der::set_of(vec![der::sequence(&[&extension])]),
            ]),
        };
        let info = der::sequence(&[
            &der::small_integer(0),
            &self.subject_der(),
            key.spki_der(),
            &der::tlv(0xa0, &attributes),
        ]);
        let signature = key.sign(&info)?;
        Ok(der::sequence(&[
            &info,
            &key.signature_algorithm_der(),
            &der::bit_string(&signature),
        ]))
    }

    fn values(&self, pick: impl Fn(&Name) -> &String) -> Vec<&str> {
        self.names.iter().map(|n| pick(n).as_str()).collect()
    }
}

/// The subject a `cfssl sign` SUBJECT file puts in place of the CSR's (cfssl's
/// `signer.Subject`): each of CN, C, ST, L, O, OU and SerialNumber that is set replaces the
/// CSR's, the others stay as the CSR has them (the CA merges them, `PopulateSubjectFromCSR`).
/// Other attributes of the CSR (E, OIDs) do not survive the merge on a CFSSL that keeps them
/// at all (1.2 drops them anyway).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Subject {
    /// `CN`.
    pub common_name: String,
    /// `names`, as in csr.json.
    pub names: Vec<Name>,
    /// `SerialNumber`.
    pub serial_number: String,
}

impl Subject {
    /// Parses a SUBJECT file (`source` names it in errors). It has csr.json's shape, and a
    /// csr.json is often what is given: its fields that are not a subject's (`hosts`, `key`)
    /// are ignored, as cfssl ignores them; `hosts` and unknown fields with a warning, since
    /// they may have been meant to count.
    pub fn parse(bytes: &[u8], source: &str) -> Result<Self> {
        // `null` is a subject that overrides nothing, as Go reads it into cfssl's.
        let Some(root) = json_object_or_null(bytes, source, "{\"CN\":…,\"names\":[…]}")? else {
            return Ok(Self::default());
        };
        unambiguous(&root, &["CN", "names", "SerialNumber"])
            .map_err(|d| Error::input(source, d))?;
        for key in root.keys() {
            let why = match key.to_ascii_lowercase().as_str() {
                "cn" | "names" | "serialnumber" | "key" | "ca" => continue,
                "hosts" => "the SANs come from the CSR, or from -hostname",
                _ => "a subject has CN, names and SerialNumber",
            };
            log::warn!("{source}: field {key} is ignored, as cfssl ignores it ({why})");
        }
        let string = |name| string_field(&root, name).map_err(|d| Error::field(source, name, d));
        let subject = Self {
            common_name: string("CN")?,
            names: parse_names(&root, source)?,
            serial_number: string("SerialNumber")?,
        };
        // The CA builds the subject from CN, SerialNumber and the names' C, ST, L, O and OU
        // alone (cfssl's `Subject.Name`), in every version.
        let set = |value: &Value| match value {
            Value::Null => false,
            Value::String(text) => !text.is_empty(),
            Value::Object(map) => !map.is_empty(),
            _ => true,
        };
        let items = list_field(&root, source, "names", "")?;
        for (i, item) in items.iter().enumerate() {
            let Value::Object(entry) = item else { continue };
            for key in ["E", "OID", "SerialNumber"] {
                if field(entry, key).is_some_and(set) {
                    log::warn!(
                        "{source}: field names[{i}].{key} is ignored: in a subject the CA uses \
                         only CN, SerialNumber and the names' C, ST, L, O and OU"
                    );
                }
            }
        }
        Ok(subject)
    }
}

/// `bytes` as a JSON object; anything else is an input error about `source` showing `shape`.
fn json_object(bytes: &[u8], source: &str, shape: &str) -> Result<Map<String, Value>> {
    json_object_or_null(bytes, source, shape)?
        .ok_or_else(|| Error::input(source, format!("expected a JSON object like {shape}")))
}

/// [`json_object`], with `null` as `None`.
fn json_object_or_null(
    bytes: &[u8],
    source: &str,
    shape: &str,
) -> Result<Option<Map<String, Value>>> {
    let value: Value = serde_json::from_slice(without_bom(bytes))
        .map_err(|e| Error::input(source, format!("not valid JSON: {e}")))?;
    match value {
        Value::Object(root) => Ok(Some(root)),
        Value::Null => Ok(None),
        _ => Err(Error::input(
            source,
            format!("expected a JSON object like {shape}"),
        )),
    }
}

/// A JSON input without the UTF-8 byte-order mark some Windows editors write first: it says
/// nothing, and Go (so cfssl) refuses such a file with `invalid character 'ï'`.
pub(crate) fn without_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// A dotted OID (`1.2.840.113549.1.9.1`) as cfssl's `OIDFromString` and Go's DER encoder
/// accept it: at least two numeric arcs, the first 0, 1 or 2, the second under 40 below 2.
fn parse_oid(text: &str) -> Result<Vec<u64>, String> {
    let arcs: Vec<u64> = text
        .split('.')
        .map(|arc| arc.parse::<u64>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("{text:?} is not a dotted OID like \"1.3.6.1.4.1.311.60.2.1.3\""))?;
    match arcs.as_slice() {
        [0 | 1, second, ..] if *second < 40 => {}
        [2, _, ..] => {}
        _ => {
            return Err(format!(
                "{text:?} is not a valid OID (two or more arcs, the first 0, 1 or 2)"
            ));
        }
    }
    Ok(arcs)
}

/// Checks a host from csr.json or `-hostname`; the error says what is wrong.
pub fn check_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("is empty: remove it".into());
    }
    if host.trim() != host {
        return Err(format!("{host:?} has surrounding whitespace: remove it"));
    }
    if host.chars().any(char::is_control) {
        return Err(format!("{host:?} contains a control character"));
    }
    if !host.is_ascii() {
        // DNS, email and URI SANs are IA5String (ASCII); Go's x509 refuses the rest as well.
        return Err(format!(
            "{host:?} is not ASCII: write an internationalised name in its punycode (xn--) form"
        ));
    }
    Ok(())
}

/// The subjectAltName extension for `sans`, or `None` when there are none.
fn san_extension(sans: &[San]) -> Option<Vec<u8>> {
    if sans.is_empty() {
        return None;
    }
    let mut names = Vec::new();
    let order = |san: &San| match san {
        San::Dns(_) => 0,
        San::Email(_) => 1,
        San::Ip(_) => 2,
        San::Uri(_) => 3,
    };
    let mut sorted: Vec<&San> = sans.iter().collect();
    sorted.sort_by_key(|san| order(san));
    for san in sorted {
        names.push(match san {
            San::Dns(v) => der::tlv(0x82, v.as_bytes()),
            San::Email(v) => der::tlv(0x81, v.as_bytes()),
            San::Ip(IpAddr::V4(v)) => der::tlv(0x87, &v.octets()),
            San::Ip(IpAddr::V6(v)) => der::tlv(0x87, &v.octets()),
            San::Uri(v) => der::tlv(0x86, v.as_bytes()),
        });
    }
    let general_names = der::tlv(der::tag::SEQUENCE, &names.concat());
    Some(der::sequence(&[
        &der::oid(oid::SUBJECT_ALT_NAME),
        &der::tlv(der::tag::OCTET_STRING, &general_names),
    ]))
}

/// `local@domain` or `Display Name <local@domain>`, as Go's `mail.ParseAddress` accepts them.
fn email_address(host: &str) -> Option<String> {
    let address = match (host.find('<'), host.strip_suffix('>')) {
        (Some(start), Some(rest)) => &rest[start + 1..],
        _ => host,
    };
    let (local, domain) = address.split_once('@')?;
    let plain = |s: &str| !s.is_empty() && !s.contains(['@', ' ', '<', '>', '/', ':', ',']);
    (plain(local) && plain(domain)).then(|| address.to_string())
}

/// Whether Go's `url.ParseRequestURI` accepts `host`: an absolute URI (a scheme, then an opaque
/// part, or `//authority` and a path) or an absolute path, with valid `%` escapes.
fn is_uri(host: &str) -> bool {
    if host.is_empty() || host.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return false;
    }
    let rest = match scheme_split(host) {
        Scheme::Invalid => return false,
        Scheme::None => return host.starts_with('/') && escapes_valid(host),
        Scheme::Some(rest) => rest,
    };
    let rest = rest.split_once('?').map_or(rest, |(before, _)| before);
    if !rest.starts_with('/') {
        return true; // opaque: `urn:uuid:…`, `mailto:…`, `name:port`
    }
    match rest.strip_prefix("//").filter(|r| !r.starts_with('/')) {
        Some(after) => {
            let (authority, path) = after.split_at(after.find('/').unwrap_or(after.len()));
            authority_valid(authority) && escapes_valid(path)
        }
        None => escapes_valid(rest),
    }
}

enum Scheme<'a> {
    /// No scheme: the text does not start with `letter *(letter / digit / + - .) :`.
    None,
    /// Starts with `:`, which Go refuses outright.
    Invalid,
    /// A scheme; what follows its `:`.
    Some(&'a str),
}

/// Go's `getScheme`.
fn scheme_split(text: &str) -> Scheme<'_> {
    for (i, c) in text.char_indices() {
        match c {
            'a'..='z' | 'A'..='Z' => {}
            '0'..='9' | '+' | '-' | '.' if i > 0 => {}
            ':' if i == 0 => return Scheme::Invalid,
            ':' => return Scheme::Some(&text[i + 1..]),
            _ => return Scheme::None,
        }
    }
    Scheme::None
}

/// `[userinfo@]host[:port]` as Go's `parseAuthority` accepts it: a port is digits only.
fn authority_valid(authority: &str) -> bool {
    let (userinfo, host) = match authority.rsplit_once('@') {
        Some((userinfo, host)) => (Some(userinfo), host),
        None => (None, authority),
    };
    let userinfo_ok = userinfo.is_none_or(|u| {
        u.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._:~!$&'()*+,;=%@".contains(c))
    });
    let port = if let Some(bracketed) = host.strip_prefix('[') {
        match bracketed.split_once(']') {
            Some((_, after)) if after.is_empty() || after.starts_with(':') => {
                after.strip_prefix(':')
            }
            _ => return false,
        }
    } else {
        host.rsplit_once(':').map(|(_, port)| port)
    };
    userinfo_ok && port.is_none_or(|p| p.bytes().all(|b| b.is_ascii_digit())) && escapes_valid(host)
}

/// Every `%` is followed by two hex digits.
fn escapes_valid(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.iter().enumerate().all(|(i, &b)| {
        b != b'%'
            || (bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    })
}

/// The items of an optional list field (absent or null: none); `shape` says what the list
/// must be, in the error for anything else.
fn list_field<'a>(
    root: &'a Map<String, Value>,
    source: &str,
    name: &str,
    shape: &str,
) -> Result<&'a [Value]> {
    match field(root, name) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(Error::field(source, name, shape)),
    }
}

/// csr.json's `names`: subject attributes, one entry per RDN group.
fn parse_names(root: &Map<String, Value>, source: &str) -> Result<Vec<Name>> {
    let items = list_field(
        root,
        source,
        "names",
        "must be a list of objects like [{\"C\":\"US\",\"O\":\"Example\"}]",
    )?;
    let mut parsed = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = |key: &str, detail: &str| Error::field(source, format!("names[{i}]{key}"), detail);
        let Value::Object(obj) = item else {
            return Err(at(
                "",
                "must be an object like {\"C\":\"US\",\"O\":\"Example\"}",
            ));
        };
        unambiguous(
            obj,
            &["C", "ST", "L", "O", "OU", "E", "SerialNumber", "OID"],
        )
        .map_err(|d| at("", &d))?;
        let get = |key: &str| string_field(obj, key).map_err(|d| at(&format!(".{key}"), d));
        let oids = match field(obj, "OID") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(key, value)| {
                    let oid_at = format!(".OID.{key}");
                    let arcs = parse_oid(key).map_err(|d| at(&oid_at, &d))?;
                    match value {
                        Value::String(v) => Ok((arcs, v.clone())),
                        _ => Err(at(&oid_at, "must be a string")),
                    }
                })
                .collect::<Result<_>>()?,
            Some(_) => {
                return Err(at(
                    ".OID",
                    "must be an object like {\"1.3.6.1.4.1.311.60.2.1.3\":\"US\"}",
                ));
            }
        };
        parsed.push(Name {
            oids,
            country: get("C")?,
            province: get("ST")?,
            locality: get("L")?,
            organization: get("O")?,
            organizational_unit: get("OU")?,
            email: get("E")?,
        });
    }
    Ok(parsed)
}

/// csr.json's `hosts`, each checked to be a name, address, e-mail or URI cfssl would accept.
fn parse_hosts(root: &Map<String, Value>, source: &str) -> Result<Vec<String>> {
    let items = list_field(
        root,
        source,
        "hosts",
        "must be a list of strings like [\"node1.example.com\",\"10.0.0.1\"]",
    )?;
    (items.iter().enumerate())
        .map(|(i, item)| {
            let at = |detail: &str| Error::field(source, format!("hosts[{i}]"), detail);
            let Value::String(host) = item else {
                return Err(at("must be a string"));
            };
            check_host(host).map_err(|d| at(&d))?;
            Ok(host.clone())
        })
        .collect()
}

/// csr.json's `key`. cfssl pre-fills {"algo":"ecdsa","size":256} before decoding, so a missing
/// section or algo is ECDSA and a missing size is the algorithm's default.
fn parse_key(root: &Map<String, Value>, source: &str) -> Result<KeySpec> {
    let Some(key) = field(root, "key").filter(|v| !v.is_null()) else {
        return Ok(KeySpec::default());
    };
    let at = |name: &str, detail: &str| Error::field(source, name, detail);
    let Value::Object(key) = key else {
        return Err(at(
            "key",
            "must be an object like {\"algo\":\"ecdsa\",\"size\":256}",
        ));
    };
    unambiguous(key, &["algo", "size"]).map_err(|d| at("key", &d))?;
    let algo = match field(key, "algo") {
        None | Some(Value::Null) => "ecdsa",
        Some(Value::String(s)) => s.as_str(),
        Some(_) => {
            return Err(at(
                "key.algo",
                "must be a string: \"ecdsa\", \"rsa\" or \"ed25519\"",
            ));
        }
    };
    let size = match field(key, "size") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(
            n.as_i64()
                .ok_or_else(|| at("key.size", "must be a whole number such as 256 or 2048"))?,
        ),
        Some(_) => return Err(at("key.size", "must be a number such as 256 or 2048")),
    };
    KeySpec::from_cfssl(algo, size).map_err(|d| {
        let which = if d.starts_with("unknown algo") {
            "key.algo"
        } else {
            "key.size"
        };
        at(which, &d)
    })
}

/// Refuses an object where two keys name one of `fields` in different case (`"CN"` and `"cn"`):
/// Go takes the later one in the file, which the parsed map no longer knows, and a file that
/// says two things should not have either chosen silently.
pub(crate) fn unambiguous(object: &Map<String, Value>, fields: &[&str]) -> Result<(), String> {
    for name in fields {
        let keys: Vec<&String> = object
            .keys()
            .filter(|k| k.eq_ignore_ascii_case(name))
            .collect();
        if let [first, second, ..] = keys.as_slice() {
            return Err(format!(
                "keys {first:?} and {second:?} both set {name} (keys match in any case): keep one"
            ));
        }
    }
    Ok(())
}

/// Looks a key up as Go's `encoding/json` does: case-insensitively (see [`unambiguous`] for
/// keys that differ only in case).
pub(crate) fn field<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object.get(name).or_else(|| {
        object
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
            .next_back()
    })
}

/// A string field that may be absent or null (empty then).
pub(crate) fn string_field(
    object: &Map<String, Value>,
    name: &str,
) -> Result<String, &'static str> {
    match field(object, name) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err("must be a string"),
    }
}

mod oid {
    pub(super) const COUNTRY: &[u64] = &[2, 5, 4, 6];
    pub(super) const PROVINCE: &[u64] = &[2, 5, 4, 8];
    pub(super) const LOCALITY: &[u64] = &[2, 5, 4, 7];
    pub(super) const ORGANIZATION: &[u64] = &[2, 5, 4, 10];
    pub(super) const ORGANIZATIONAL_UNIT: &[u64] = &[2, 5, 4, 11];
    pub(super) const COMMON_NAME: &[u64] = &[2, 5, 4, 3];
    pub(super) const SERIAL_NUMBER: &[u64] = &[2, 5, 4, 5];
    pub(super) const EMAIL_ADDRESS: &[u64] = &[1, 2, 840, 113549, 1, 9, 1];
    pub(super) const EXTENSION_REQUEST: &[u64] = &[1, 2, 840, 113549, 1, 9, 14];
    pub(super) const SUBJECT_ALT_NAME: &[u64] = &[2, 5, 29, 17];
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keygen::Curve;

    fn parse(json: &str) -> Result<CertificateRequest> {
        CertificateRequest::parse(json.as_bytes(), "csr.json")
    }

    #[test]
    fn keys_differing_only_in_case_are_refused() {
        let err = parse(r#"{"CN":"a","cn":"b"}"#).unwrap_err().to_string();
        assert!(err.contains(r#"keys "CN" and "cn" both set CN"#), "{err}");
        let err = parse(r#"{"CN":"a","names":[{"O":"x","o":"y"}]}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("field names[0]: keys"), "{err}");
        let err = parse(r#"{"CN":"a","key":{"algo":"rsa","ALGO":"ecdsa"}}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("field key: keys"), "{err}");
    }

    #[test]
    fn keys_match_case_insensitively_and_unknown_keys_are_ignored() {
        let req =
            parse(r#"{"cn":"a","HOSTS":["b"],"NAMES":[{"c":"US","o":"X"}],"extra":1}"#).unwrap();
        assert_eq!(req.common_name, "a");
        assert_eq!(req.hosts, ["b"]);
        assert_eq!(req.names[0].country, "US");
        assert_eq!(req.names[0].organization, "X");
        assert_eq!(req.key, KeySpec::Ecdsa(Curve::P256));
    }

    #[test]
    fn key_defaults_follow_cfssl_prefill() {
        assert_eq!(
            parse(r#"{"CN":"a","key":{"size":384}}"#).unwrap().key,
            KeySpec::Ecdsa(Curve::P384)
        );
        assert_eq!(
            parse(r#"{"CN":"a","key":{}}"#).unwrap().key,
            KeySpec::Ecdsa(Curve::P256)
        );
        assert_eq!(
            parse(r#"{"CN":"a","key":null}"#).unwrap().key,
            KeySpec::Ecdsa(Curve::P256)
        );
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (r#"{"CN":1}"#, "field CN"),
            (r#"{"CN":"a","hosts":"b"}"#, "field hosts"),
            (r#"{"CN":"a","hosts":["b",""]}"#, "field hosts[1]"),
            (r#"{"CN":"a","hosts":["a", " b"]}"#, "field hosts[1]"),
            (r#"{"CN":"a","names":[{"O":5}]}"#, "field names[0].O"),
            (r#"{"CN":"a","hosts":["é.example"]}"#, "punycode"),
            (r#"{"CN":"a","key":{"algo":"dsa"}}"#, "field key.algo"),
            (
                r#"{"CN":"a","key":{"algo":"rsa","size":"2048"}}"#,
                "field key.size",
            ),
            (r#"{"CN":"a","ca":{"expiry":"1h"}}"#, "field ca"),
            (r#"["CN"]"#, "csr.json"),
            (r#"{"CN":"a""#, "not valid JSON"),
        ];
        for (json, expected) in cases {
            let err = parse(json).unwrap_err().to_string();
            assert!(err.contains(expected), "{json}: {err}");
        }
    }

    #[test]
    fn hosts_are_classified_as_cfssl_does() {
        assert_eq!(
            San::classify("10.0.0.1"),
            San::Ip("10.0.0.1".parse().unwrap())
        );
        assert_eq!(San::classify("::1"), San::Ip("::1".parse().unwrap()));
        assert_eq!(
            San::classify("ops@example.com"),
            San::Email("ops@example.com".into())
        );
        assert_eq!(
            San::classify("Ops <ops@example.com>"),
            San::Email("ops@example.com".into())
        );
        assert_eq!(
            San::classify("spiffe://td/ns/x"),
            San::Uri("spiffe://td/ns/x".into())
        );
        assert_eq!(
            San::classify("*.example.com"),
            San::Dns("*.example.com".into())
        );
        assert_eq!(San::classify("node1"), San::Dns("node1".into()));
        // What Go's url.ParseRequestURI accepts is a URI (current cfssl), the rest DNS.
        for uri in [
            "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66",
            "node1:8443",
            "/spiffe/path",
            "https://[::1]:8443/x?y=1",
            "mailto:ops",
            "https://user@host:1/a%20b",
        ] {
            assert_eq!(San::classify(uri), San::Uri(uri.into()), "{uri}");
        }
        for dns in [
            "127.0.0.1:8443",
            ":8443",
            "https://host:port/",
            "https://host/a%zz",
            "1node:8443",
        ] {
            assert_eq!(San::classify(dns), San::Dns(dns.into()), "{dns}");
        }
        // Go writes an IPv4-mapped address as its 4 bytes.
        assert_eq!(
            San::classify("::ffff:10.0.0.1"),
            San::Ip("10.0.0.1".parse().unwrap())
        );
    }

    /// The subject's RDNs as `type=value` lists, types as dotted OIDs.
    fn rdns(der: &[u8]) -> Vec<Vec<String>> {
        use x509_parser::prelude::FromDer;
        let (_, name) = x509_parser::x509::X509Name::from_der(der).unwrap();
        name.iter()
            .map(|rdn| {
                rdn.iter()
                    .map(|a| format!("{}={}", a.attr_type(), a.as_str().unwrap()))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn extra_attributes_follow_as_rdns_of_their_own_as_go_writes_them() {
        let req = parse(
            r#"{"CN":"u","names":[{"O":"x","E":"a@example.com","OID":{"1.3.6.1.4.1.311.60.2.1.3":"US"}},
                {"E":"b@example.com"}]}"#,
        )
        .unwrap();
        assert_eq!(
            rdns(&req.subject_der()),
            [
                vec!["2.5.4.10=x"],
                vec!["2.5.4.3=u"],
                vec!["1.3.6.1.4.1.311.60.2.1.3=US"],
                vec!["1.2.840.113549.1.9.1=a@example.com"],
                vec!["1.2.840.113549.1.9.1=b@example.com"],
            ]
        );
        // An extra attribute of a standard type replaces that type's RDN (Go's appendRDNs).
        let req = parse(r#"{"CN":"u","names":[{"O":"x","OID":{"2.5.4.10":"y"}}]}"#).unwrap();
        assert_eq!(
            rdns(&req.subject_der()),
            [vec!["2.5.4.3=u"], vec!["2.5.4.10=y"]]
        );
        for bad in [
            r#"{"x":"y"}"#,
            r#"{"1.2.x":"y"}"#,
            r#"{"3.1":"y"}"#,
            r#"{"1":"y"}"#,
        ] {
            let json = format!(r#"{{"CN":"u","names":[{{"OID":{bad}}}]}}"#);
            let err = parse(&json).unwrap_err().to_string();
            assert!(err.contains("field names[0].OID."), "{bad}: {err}");
        }
        let err = parse(r#"{"CN":"u","names":[{"OID":{"1.2.3":7}}]}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("must be a string"), "{err}");
    }

    #[test]
    fn subject_groups_repeated_attributes_into_one_sorted_rdn() {
        let req = parse(r#"{"CN":"u","names":[{"O":"Zeta"},{"O":"Abcd"}]}"#).unwrap();
        let der = req.subject_der();
        let abcd = der.windows(4).position(|w| w == b"Abcd").unwrap();
        let zeta = der.windows(4).position(|w| w == b"Zeta").unwrap();
        assert!(abcd < zeta, "SET OF members are DER-sorted");
        // SEQUENCE { SET { O=Abcd, O=Zeta }, SET { CN=u } }: two RDNs, the first holding two AVAs.
        assert_eq!(der.iter().filter(|b| **b == der::tag::SET).count(), 2);
    }
}
