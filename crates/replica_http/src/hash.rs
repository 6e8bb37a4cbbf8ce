//! The representation-independent hash of the IC interface specification.
//!
//! Request ids, the content of query response signatures and the
//! delegations of `sender_delegation` are all hashed the same way: a value
//! is hashed by its structure, not by its CBOR bytes, so that two encodings
//! of the same request have the same id.
//!
//! - a blob is hashed as itself, a text as its UTF-8 bytes (`H(b)`);
//! - a natural number as its unsigned LEB128 encoding;
//! - an array as the concatenation of the hashes of its elements;
//! - a map as the concatenation, sorted bytewise, of `H(key) · H(value)`
//!   for every entry.
//!
//! ```
//! use replica_http::hash::{hash_value, Value};
//! let id = hash_value(&Value::Map(vec![
//!     ("request_type".into(), Value::Text("call".into())),
//!     ("canister_id".into(), Value::Bytes(vec![0, 0, 0, 0, 0, 0, 4, 0xd2])),
//!     ("method_name".into(), Value::Text("hello".into())),
//!     ("arg".into(), Value::Bytes(b"DIDL\x00\xfd*".to_vec())),
//! ]));
//! assert_eq!(
//!     hex::encode(id),
//!     "8781291c347db32a9d8c10eb62b710fce5a93be676474c42babc74c51858f94b"
//! );
//! ```

use sha2::{Digest, Sha256};

/// A value as the representation-independent hash sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A blob (principals are blobs of their bytes).
    Bytes(Vec<u8>),
    /// A text, hashed as its UTF-8 bytes.
    Text(String),
    /// A natural number, hashed as its unsigned LEB128 encoding.
    Nat(u64),
    /// An array, hashed as the concatenation of its elements' hashes.
    Array(Vec<Value>),
    /// A map from text keys; entry order does not matter.
    Map(Vec<(String, Value)>),
}

/// The id of a request: the hash of its `content` map.
pub type RequestId = [u8; 32];

/// The representation-independent hash of `v`.
pub fn hash_value(v: &Value) -> [u8; 32] {
    match v {
        Value::Bytes(b) => sha256(b),
        Value::Text(t) => sha256(t.as_bytes()),
        Value::Nat(n) => sha256(&leb128(*n)),
        Value::Array(items) => {
            let mut h = Sha256::new();
            for item in items {
                h.update(hash_value(item));
            }
            h.finalize().into()
        }
        Value::Map(entries) => {
            let mut pairs: Vec<[u8; 64]> = entries
                .iter()
                .map(|(k, v)| {
                    let mut pair = [0u8; 64];
                    pair[..32].copy_from_slice(&sha256(k.as_bytes()));
                    pair[32..].copy_from_slice(&hash_value(v));
                    pair
                })
                .collect();
            pairs.sort_unstable();
            let mut h = Sha256::new();
            for pair in &pairs {
                h.update(pair);
            }
            h.finalize().into()
        }
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Unsigned LEB128: seven bits per byte, least significant first, the high
/// bit set on every byte but the last.
pub(crate) fn leb128(mut n: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(10);
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex32(v: &Value) -> String {
        hex::encode(hash_value(v))
    }

    fn spec_call(with_sender_and_expiry: bool) -> Value {
        let mut entries = vec![
            ("request_type".to_string(), Value::Text("call".into())),
            (
                "canister_id".to_string(),
                Value::Bytes(vec![0, 0, 0, 0, 0, 0, 0x04, 0xd2]),
            ),
            ("method_name".to_string(), Value::Text("hello".into())),
            ("arg".to_string(), Value::Bytes(b"DIDL\x00\xfd*".to_vec())),
        ];
        if with_sender_and_expiry {
            entries.push(("sender".to_string(), Value::Bytes(vec![0x04])));
            entries.push((
                "ingress_expiry".to_string(),
                Value::Nat(1_685_570_400_000_000_000),
            ));
        }
        Value::Map(entries)
    }

    /// The worked example of the specification's "Request ids" section.
    #[test]
    fn spec_example_request_id() {
        assert_eq!(
            hex32(&spec_call(true)),
            "1d1091364d6bb8a6c16b203ee75467d59ead468f523eb058880ae8ec80e2b101"
        );
    }

    /// The specification's earlier example (no sender, no expiry).
    #[test]
    fn spec_example_request_id_without_sender() {
        assert_eq!(
            hex32(&spec_call(false)),
            "8781291c347db32a9d8c10eb62b710fce5a93be676474c42babc74c51858f94b"
        );
    }

    /// The intermediate hashes the specification lists for that example.
    #[test]
    fn spec_example_field_hashes() {
        let cases = [
            (
                Value::Text("request_type".into()),
                "769e6f87bdda39c859642b74ce9763cdd37cb1cd672733e8c54efaa33ab78af9",
            ),
            (
                Value::Text("call".into()),
                "7edb360f06acaef2cc80dba16cf563f199d347db4443da04da0c8173e3f9e4ed",
            ),
            (
                Value::Bytes(vec![0x04]),
                "e52d9c508c502347344d8c07ad91cbd6068afc75ff6292f062a09ca381c89e71",
            ),
            (
                Value::Nat(1_685_570_400_000_000_000),
                "db8e57abc8cda1525d45fdd2637af091bc1f28b35819a40df71517d1501f2c76",
            ),
            (
                Value::Bytes(vec![0, 0, 0, 0, 0, 0, 4, 0xd2]),
                "4d8c47c3c1c837964011441882d745f7e92d10a40cef0520447c63029eafe396",
            ),
            (
                Value::Bytes(b"DIDL\x00\xfd*".to_vec()),
                "6c0b2ae49718f6995c02ac5700c9c789d7b7862a0d53e6d40a73f1fcd2f70189",
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(hex32(&value), expected, "hash of {value:?}");
        }
    }

    #[test]
    fn map_order_does_not_matter() {
        let Value::Map(mut entries) = spec_call(true) else {
            unreachable!("spec_call builds a map")
        };
        entries.reverse();
        assert_eq!(
            hash_value(&Value::Map(entries)),
            hash_value(&spec_call(true))
        );
    }

    #[test]
    fn array_is_hash_of_concatenated_hashes() {
        let a = Value::Bytes(b"a".to_vec());
        let b = Value::Text("b".into());
        let mut concat = hash_value(&a).to_vec();
        concat.extend_from_slice(&hash_value(&b));
        assert_eq!(hash_value(&Value::Array(vec![a, b])), sha256(&concat));
        // The empty array hashes as the empty blob: SHA-256 of nothing.
        assert_eq!(
            hash_value(&Value::Array(vec![])),
            hash_value(&Value::Bytes(vec![]))
        );
    }

    #[test]
    fn leb128_encodings() {
        assert_eq!(leb128(0), [0]);
        assert_eq!(leb128(127), [0x7f]);
        assert_eq!(leb128(128), [0x80, 0x01]);
        assert_eq!(leb128(624_485), [0xe5, 0x8e, 0x26]);
        assert_eq!(leb128(u64::MAX).len(), 10);
    }
}
