//! The handful of DER encodings nodecert writes itself: the PKCS#10 request, the subject name and
//! the SAN extension.
//!
//! Why not rcgen's CSR builder: its `DistinguishedName` holds one value per attribute type, so
//! cfssl's multi-valued RDNs (`"names":[{"O":"system:masters"},{"O":"ops"}]` gives
//! `O=ops+O=system:masters`, a common shape for Kubernetes group membership) cannot be expressed,
//! and it does not choose PrintableString/UTF8String the way Go does. The encoder below is just
//! tag-length-value; everything it produces is checked by `openssl req -verify` in the tests.

/// Universal tags used here.
pub(crate) mod tag {
    pub(crate) const INTEGER: u8 = 0x02;
    pub(crate) const BIT_STRING: u8 = 0x03;
    pub(crate) const OCTET_STRING: u8 = 0x04;
    pub(crate) const NULL: u8 = 0x05;
    pub(crate) const OID: u8 = 0x06;
    pub(crate) const UTF8_STRING: u8 = 0x0c;
    pub(crate) const PRINTABLE_STRING: u8 = 0x13;
    pub(crate) const SEQUENCE: u8 = 0x30;
    pub(crate) const SET: u8 = 0x31;
}

/// Encodes one TLV.
pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// A SEQUENCE of already-encoded elements.
pub(crate) fn sequence(parts: &[&[u8]]) -> Vec<u8> {
    tlv(tag::SEQUENCE, &parts.concat())
}

/// A SET OF already-encoded elements, sorted as DER requires (X.690 11.6).
pub(crate) fn set_of(mut parts: Vec<Vec<u8>>) -> Vec<u8> {
    parts.sort();
    tlv(tag::SET, &parts.concat())
}

/// A BIT STRING with no unused bits.
pub(crate) fn bit_string(bytes: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(bytes.len() + 1);
    content.push(0);
    content.extend_from_slice(bytes);
    tlv(tag::BIT_STRING, &content)
}

/// A small non-negative INTEGER.
pub(crate) fn small_integer(value: u8) -> Vec<u8> {
    if value < 0x80 {
        tlv(tag::INTEGER, &[value])
    } else {
        tlv(tag::INTEGER, &[0, value])
    }
}

/// An OBJECT IDENTIFIER from its dotted arcs.
pub(crate) fn oid(arcs: &[u64]) -> Vec<u8> {
    debug_assert!(arcs.len() >= 2, "an OID has at least two arcs");
    let mut content = vec![(arcs[0] * 40 + arcs[1]) as u8];
    for &arc in &arcs[2..] {
        let mut chunk = vec![(arc & 0x7f) as u8];
        let mut rest = arc >> 7;
        while rest > 0 {
            chunk.push(0x80 | (rest & 0x7f) as u8);
            rest >>= 7;
        }
        content.extend(chunk.iter().rev());
    }
    tlv(tag::OID, &content)
}

/// A string as Go's `encoding/asn1` marshals it: PrintableString when every character is in
/// that set, UTF8String otherwise (Go does not allow `*` or `&` in PrintableString here).
pub(crate) fn directory_string(value: &str) -> Vec<u8> {
    let printable = value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b" '()+,-./:=?".contains(&b));
    let tag = if printable {
        tag::PRINTABLE_STRING
    } else {
        tag::UTF8_STRING
    };
    tlv(tag, value.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lengths_use_the_minimal_long_form() {
        assert_eq!(&tlv(0x04, &[0; 0x7f])[..2], &[0x04, 0x7f]);
        assert_eq!(&tlv(0x04, &[0; 0x80])[..3], &[0x04, 0x81, 0x80]);
        assert_eq!(&tlv(0x04, &[0; 0x1234])[..4], &[0x04, 0x82, 0x12, 0x34]);
    }

    #[test]
    fn oids_encode_multibyte_arcs() {
        // 1.2.840.113549.1.9.14 (extensionRequest), from RFC 2985.
        assert_eq!(
            oid(&[1, 2, 840, 113549, 1, 9, 14]),
            [
                0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x0e
            ]
        );
    }

    #[test]
    fn strings_pick_the_type_go_picks() {
        assert_eq!(directory_string("system:nodes")[0], tag::PRINTABLE_STRING);
        assert_eq!(directory_string("x&y")[0], tag::UTF8_STRING);
        assert_eq!(directory_string("*.example.com")[0], tag::UTF8_STRING);
        assert_eq!(directory_string("node_1")[0], tag::UTF8_STRING);
        assert_eq!(directory_string("Zürich")[0], tag::UTF8_STRING);
    }

    #[test]
    fn sets_are_sorted() {
        assert_eq!(set_of(vec![vec![2], vec![1]]), [0x31, 0x02, 0x01, 0x02]);
    }
}
