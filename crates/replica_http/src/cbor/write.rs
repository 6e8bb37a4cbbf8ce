//! CBOR written item by item (RFC 8949, definite lengths, shortest heads):
//! unsigned integers, byte and text strings, array and map heads, tags.
//!
//! [`Cbor::encode`](super::Cbor::encode) writes its trees with [`head`];
//! certificates, hash trees, `controllers` and `canister_ranges` are
//! streamed with the functions here, without building a tree first.

/// The self-describe tag (`#6.55799`).
pub const SELF_DESCRIBE_TAG: u64 = 55799;

const MAJOR_UINT: u8 = 0;
const MAJOR_BYTES: u8 = 2;
const MAJOR_TEXT: u8 = 3;
const MAJOR_ARRAY: u8 = 4;
const MAJOR_MAP: u8 = 5;
const MAJOR_TAG: u8 = 6;

/// Writes the head of a data item: its major type and argument, in the
/// shortest form.
pub(super) fn head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    if n < 24 {
        out.push(m | n as u8);
    } else if n <= u8::MAX as u64 {
        out.extend_from_slice(&[m | 24, n as u8]);
    } else if n <= u16::MAX as u64 {
        out.push(m | 25);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else if n <= u32::MAX as u64 {
        out.push(m | 26);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

pub fn uint(out: &mut Vec<u8>, n: u64) {
    head(out, MAJOR_UINT, n);
}

pub fn bytes(out: &mut Vec<u8>, b: &[u8]) {
    head(out, MAJOR_BYTES, b.len() as u64);
    out.extend_from_slice(b);
}

pub fn text(out: &mut Vec<u8>, s: &str) {
    head(out, MAJOR_TEXT, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// The head of an array of `len` items (the items follow).
pub fn array(out: &mut Vec<u8>, len: usize) {
    head(out, MAJOR_ARRAY, len as u64);
}

/// The head of a map of `len` entries (keys and values follow).
pub fn map(out: &mut Vec<u8>, len: usize) {
    head(out, MAJOR_MAP, len as u64);
}

pub fn tag(out: &mut Vec<u8>, t: u64) {
    head(out, MAJOR_TAG, t);
}

/// `#6.55799([* bytes])`: how the state tree stores `controllers`.
pub fn tagged_blob_array<'a>(items: impl ExactSizeIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    tag(&mut out, SELF_DESCRIBE_TAG);
    array(&mut out, items.len());
    for item in items {
        bytes(&mut out, item);
    }
    out
}

/// `#6.55799([* [bytes bytes]])`: how the state tree stores canister ranges.
pub fn tagged_ranges(ranges: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    tag(&mut out, SELF_DESCRIBE_TAG);
    array(&mut out, ranges.len());
    for (start, end) in ranges {
        array(&mut out, 2);
        bytes(&mut out, start);
        bytes(&mut out, end);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8949, appendix A: heads at each width boundary.
    #[test]
    fn heads_use_the_shortest_form() {
        let enc = |n: u64| {
            let mut out = Vec::new();
            uint(&mut out, n);
            hex::encode(out)
        };
        assert_eq!(enc(0), "00");
        assert_eq!(enc(23), "17");
        assert_eq!(enc(24), "1818");
        assert_eq!(enc(255), "18ff");
        assert_eq!(enc(256), "190100");
        assert_eq!(enc(65536), "1a00010000");
        assert_eq!(enc(1_000_000_000_000), "1b000000e8d4a51000");
        let mut out = Vec::new();
        tag(&mut out, SELF_DESCRIBE_TAG);
        assert_eq!(hex::encode(out), "d9d9f7");
        let mut out = Vec::new();
        text(&mut out, "IETF");
        assert_eq!(hex::encode(out), "6449455446");
    }

    #[test]
    fn controllers_are_a_tagged_array_of_blobs() {
        let a = [1u8, 2];
        let b = [3u8];
        let enc = tagged_blob_array([&a[..], &b[..]].into_iter());
        assert_eq!(hex::encode(enc), "d9d9f7824201024103");
    }
}
