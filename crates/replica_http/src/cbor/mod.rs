//! A small CBOR (RFC 8949) reader and writer for the HTTP interface.
//!
//! Requests arrive as CBOR envelopes whose `content` map must be hashed
//! field by field (the request id), so the reader keeps every data item as
//! it came: [`Cbor`] is a generic tree, not a typed struct. The reader is
//! strict where the interface specification is (text keys in request maps
//! are checked by the envelope layer; no duplicate map keys here), bounded
//! (nesting depth, lengths checked against the input before allocating)
//! and never panics on hostile input. The writer produces the canonical
//! shortest forms the official agents expect.

use std::fmt;

use write::head;

pub mod write;

/// The self-describing CBOR tag (`d9d9f7`) requests, responses and
/// certificates start with.
pub use write::SELF_DESCRIBE_TAG;

/// Nesting deeper than this is refused. An envelope is about six levels
/// deep; the hash trees of canister signatures nest one level per fork
/// and label, a few dozen in practice.
const MAX_DEPTH: usize = 128;

/// One CBOR data item.
#[derive(Clone, Debug, PartialEq)]
pub enum Cbor {
    Uint(u64),
    /// A negative integer `-1 - n`, kept as `n`.
    Negative(u64),
    Bytes(Vec<u8>),
    Text(String),
    Array(Vec<Cbor>),
    Map(Vec<(Cbor, Cbor)>),
    Tag(u64, Box<Cbor>),
    Bool(bool),
    Null,
    Undefined,
    Float(f64),
}

/// Why bytes are not one well-formed CBOR data item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CborError {
    #[error("CBOR ends early: expected {needed} more bytes at offset {offset}")]
    Truncated { offset: usize, needed: u64 },
    #[error("CBOR has {0} bytes after the data item")]
    TrailingBytes(usize),
    #[error("CBOR item at offset {offset} is malformed: {reason}")]
    Malformed { offset: usize, reason: &'static str },
    #[error("CBOR nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("CBOR text at offset {0} is not valid UTF-8")]
    InvalidUtf8(usize),
    #[error("CBOR map has the key {0} twice")]
    DuplicateKey(String),
}

impl Cbor {
    /// The item under any tags (the self-describe tag in particular).
    pub fn untagged(&self) -> &Cbor {
        let mut item = self;
        while let Cbor::Tag(_, inner) = item {
            item = inner;
        }
        item
    }

    /// The value of text key `key` if this is a map that has it.
    pub fn get(&self, key: &str) -> Option<&Cbor> {
        match self.untagged() {
            Cbor::Map(entries) => entries
                .iter()
                .find(|(k, _)| matches!(k.untagged(), Cbor::Text(t) if t == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// A short name of the item's kind, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Cbor::Uint(_) | Cbor::Negative(_) => "an integer",
            Cbor::Bytes(_) => "a byte string",
            Cbor::Text(_) => "a text string",
            Cbor::Array(_) => "an array",
            Cbor::Map(_) => "a map",
            Cbor::Tag(_, inner) => inner.kind(),
            Cbor::Bool(_) => "a boolean",
            Cbor::Null => "null",
            Cbor::Undefined => "undefined",
            Cbor::Float(_) => "a float",
        }
    }

    /// The item encoded (shortest forms, definite lengths).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out);
        out
    }

    /// The item with the self-describe tag in front, as responses are sent.
    pub fn encode_self_described(&self) -> Vec<u8> {
        Cbor::Tag(SELF_DESCRIBE_TAG, Box::new(self.clone())).encode()
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Cbor::Uint(n) => head(out, 0, *n),
            Cbor::Negative(n) => head(out, 1, *n),
            Cbor::Bytes(b) => {
                head(out, 2, b.len() as u64);
                out.extend_from_slice(b);
            }
            Cbor::Text(t) => {
                head(out, 3, t.len() as u64);
                out.extend_from_slice(t.as_bytes());
            }
            Cbor::Array(items) => {
                head(out, 4, items.len() as u64);
                for item in items {
                    item.write(out);
                }
            }
            Cbor::Map(entries) => {
                head(out, 5, entries.len() as u64);
                for (k, v) in entries {
                    k.write(out);
                    v.write(out);
                }
            }
            Cbor::Tag(t, inner) => {
                head(out, 6, *t);
                inner.write(out);
            }
            Cbor::Bool(false) => out.push(0xf4),
            Cbor::Bool(true) => out.push(0xf5),
            Cbor::Null => out.push(0xf6),
            Cbor::Undefined => out.push(0xf7),
            Cbor::Float(f) => {
                out.push(0xfb);
                out.extend_from_slice(&f.to_bits().to_be_bytes());
            }
        }
    }
}

impl fmt::Display for Cbor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.untagged() {
            Cbor::Text(t) => write!(f, "{t:?}"),
            Cbor::Uint(n) => write!(f, "{n}"),
            Cbor::Bytes(b) => write!(f, "h'{}'", hex::encode(b)),
            other => f.write_str(other.kind()),
        }
    }
}

/// A map with text keys, in the given order.
pub fn map<'a>(entries: impl IntoIterator<Item = (&'a str, Cbor)>) -> Cbor {
    Cbor::Map(
        entries
            .into_iter()
            .map(|(k, v)| (Cbor::Text(k.to_string()), v))
            .collect(),
    )
}

/// Decodes exactly one data item from `bytes`.
pub fn decode(bytes: &[u8]) -> Result<Cbor, CborError> {
    let mut r = Reader { bytes, pos: 0 };
    let item = r.item(0)?;
    if r.pos != bytes.len() {
        return Err(CborError::TrailingBytes(bytes.len() - r.pos));
    }
    Ok(item)
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

/// What an initial byte announces.
enum Arg {
    Value(u64),
    Indefinite,
}

impl Reader<'_> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: u64) -> Result<&[u8], CborError> {
        if n > self.remaining() as u64 {
            return Err(CborError::Truncated {
                offset: self.pos,
                needed: n - self.remaining() as u64,
            });
        }
        let start = self.pos;
        self.pos += n as usize;
        Ok(&self.bytes[start..self.pos])
    }

    fn byte(&mut self) -> Result<u8, CborError> {
        Ok(self.take(1)?[0])
    }

    fn malformed(&self, reason: &'static str) -> CborError {
        CborError::Malformed {
            offset: self.pos,
            reason,
        }
    }

    fn arg(&mut self, info: u8) -> Result<Arg, CborError> {
        Ok(Arg::Value(match info {
            0..=23 => info as u64,
            24 => self.byte()? as u64,
            25 => u16::from_be_bytes(self.fixed::<2>()?) as u64,
            26 => u32::from_be_bytes(self.fixed::<4>()?) as u64,
            27 => u64::from_be_bytes(self.fixed::<8>()?),
            31 => return Ok(Arg::Indefinite),
            _ => return Err(self.malformed("reserved additional information")),
        }))
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], CborError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N as u64)?);
        Ok(out)
    }

    /// True (and consumed) if the next byte is the "break" stop code.
    fn at_break(&mut self) -> Result<bool, CborError> {
        if self.remaining() == 0 {
            return Err(CborError::Truncated {
                offset: self.pos,
                needed: 1,
            });
        }
        if self.bytes[self.pos] == 0xff {
            self.pos += 1;
            return Ok(true);
        }
        Ok(false)
    }

    fn item(&mut self, depth: usize) -> Result<Cbor, CborError> {
        if depth > MAX_DEPTH {
            return Err(CborError::TooDeep);
        }
        let start = self.pos;
        let initial = self.byte()?;
        let major = initial >> 5;
        let info = initial & 0x1f;
        match major {
            0 | 1 => match self.arg(info)? {
                Arg::Value(n) if major == 0 => Ok(Cbor::Uint(n)),
                Arg::Value(n) => Ok(Cbor::Negative(n)),
                Arg::Indefinite => Err(self.malformed("indefinite-length integer")),
            },
            2 | 3 => {
                let data = match self.arg(info)? {
                    Arg::Value(n) => self.take(n)?.to_vec(),
                    Arg::Indefinite => {
                        let mut data = Vec::new();
                        while !self.at_break()? {
                            let chunk_start = self.pos;
                            let head = self.byte()?;
                            if head >> 5 != major {
                                return Err(self.malformed("string chunk of another type"));
                            }
                            match self.arg(head & 0x1f)? {
                                Arg::Value(n) => data.extend_from_slice(self.take(n)?),
                                Arg::Indefinite => {
                                    self.pos = chunk_start;
                                    return Err(self.malformed("nested indefinite string"));
                                }
                            }
                        }
                        data
                    }
                };
                if major == 2 {
                    Ok(Cbor::Bytes(data))
                } else {
                    String::from_utf8(data)
                        .map(Cbor::Text)
                        .map_err(|_| CborError::InvalidUtf8(start))
                }
            }
            4 => {
                let mut items = Vec::new();
                match self.arg(info)? {
                    Arg::Value(n) => {
                        // Each item takes at least one byte.
                        if n > self.remaining() as u64 {
                            return Err(CborError::Truncated {
                                offset: self.pos,
                                needed: n - self.remaining() as u64,
                            });
                        }
                        for _ in 0..n {
                            items.push(self.item(depth + 1)?);
                        }
                    }
                    Arg::Indefinite => {
                        while !self.at_break()? {
                            items.push(self.item(depth + 1)?);
                        }
                    }
                }
                Ok(Cbor::Array(items))
            }
            5 => {
                let mut entries: Vec<(Cbor, Cbor)> = Vec::new();
                let mut push = |k: Cbor, v: Cbor| {
                    if entries.iter().any(|(old, _)| *old == k) {
                        return Err(CborError::DuplicateKey(k.to_string()));
                    }
                    entries.push((k, v));
                    Ok(())
                };
                match self.arg(info)? {
                    Arg::Value(n) => {
                        if n.saturating_mul(2) > self.remaining() as u64 {
                            return Err(CborError::Truncated {
                                offset: self.pos,
                                needed: n.saturating_mul(2) - self.remaining() as u64,
                            });
                        }
                        for _ in 0..n {
                            let k = self.item(depth + 1)?;
                            let v = self.item(depth + 1)?;
                            push(k, v)?;
                        }
                    }
                    Arg::Indefinite => {
                        while !self.at_break()? {
                            let k = self.item(depth + 1)?;
                            let v = self.item(depth + 1)?;
                            push(k, v)?;
                        }
                    }
                }
                Ok(Cbor::Map(entries))
            }
            6 => match self.arg(info)? {
                Arg::Value(tag) => Ok(Cbor::Tag(tag, Box::new(self.item(depth + 1)?))),
                Arg::Indefinite => Err(self.malformed("indefinite tag")),
            },
            _ => match info {
                20 => Ok(Cbor::Bool(false)),
                21 => Ok(Cbor::Bool(true)),
                22 => Ok(Cbor::Null),
                23 => Ok(Cbor::Undefined),
                25 => {
                    let half = u16::from_be_bytes(self.fixed::<2>()?);
                    Ok(Cbor::Float(half_to_f64(half)))
                }
                26 => Ok(Cbor::Float(f32::from_be_bytes(self.fixed::<4>()?) as f64)),
                27 => Ok(Cbor::Float(f64::from_be_bytes(self.fixed::<8>()?))),
                31 => Err(self.malformed("unexpected break")),
                _ => Err(self.malformed("unsupported simple value")),
            },
        }
    }
}

fn half_to_f64(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = ((h >> 10) & 0x1f) as i32;
    let mant = (h & 0x3ff) as f64;
    sign * match exp {
        0 => mant * 2f64.powi(-24),
        31 if mant == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        _ => (1.0 + mant / 1024.0) * 2f64.powi(exp - 15),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_what_it_writes() {
        let item = Cbor::Tag(
            SELF_DESCRIBE_TAG,
            Box::new(map([
                ("a", Cbor::Uint(0)),
                ("b", Cbor::Uint(24)),
                ("c", Cbor::Uint(u64::MAX)),
                ("d", Cbor::Bytes(vec![1; 300])),
                ("e", Cbor::Array(vec![Cbor::Text("x".into()), Cbor::Null])),
                ("f", Cbor::Negative(5)),
                ("g", Cbor::Bool(true)),
            ])),
        );
        let bytes = item.encode();
        assert_eq!(&bytes[..3], [0xd9, 0xd9, 0xf7]);
        assert_eq!(decode(&bytes), Ok(item));
    }

    /// RFC 8949 Appendix A examples.
    #[test]
    fn rfc_examples() {
        let cases: &[(&str, Cbor)] = &[
            ("00", Cbor::Uint(0)),
            ("1903e8", Cbor::Uint(1000)),
            ("1bffffffffffffffff", Cbor::Uint(u64::MAX)),
            ("3863", Cbor::Negative(99)),
            ("4401020304", Cbor::Bytes(vec![1, 2, 3, 4])),
            ("6449455446", Cbor::Text("IETF".into())),
            ("5f42010243030405ff", Cbor::Bytes(vec![1, 2, 3, 4, 5])),
            ("7f657374726561646d696e67ff", Cbor::Text("streaming".into())),
            (
                "9f018202039f0405ffff",
                Cbor::Array(vec![
                    Cbor::Uint(1),
                    Cbor::Array(vec![Cbor::Uint(2), Cbor::Uint(3)]),
                    Cbor::Array(vec![Cbor::Uint(4), Cbor::Uint(5)]),
                ]),
            ),
            (
                "bf6346756ef563416d7421ff",
                map([("Fun", Cbor::Bool(true)), ("Amt", Cbor::Negative(1))]),
            ),
            ("f93c00", Cbor::Float(1.0)),
            ("fb3ff199999999999a", Cbor::Float(1.1)),
        ];
        for (hex_bytes, expected) in cases {
            let bytes = hex::decode(hex_bytes).unwrap();
            assert_eq!(decode(&bytes).as_ref(), Ok(expected), "{hex_bytes}");
        }
    }

    #[test]
    fn refuses_malformed_input() {
        type Check = fn(&CborError) -> bool;
        let cases: &[(&str, Check)] = &[
            ("", |e| matches!(e, CborError::Truncated { .. })),
            ("5a0000ffff", |e| matches!(e, CborError::Truncated { .. })),
            ("9bffffffffffffffff", |e| {
                matches!(e, CborError::Truncated { .. })
            }),
            ("bbffffffffffffffff", |e| {
                matches!(e, CborError::Truncated { .. })
            }),
            ("0000", |e| matches!(e, CborError::TrailingBytes(1))),
            ("1c", |e| matches!(e, CborError::Malformed { .. })),
            ("62c328", |e| matches!(e, CborError::InvalidUtf8(0))),
            ("a2616101616102", |e| {
                matches!(e, CborError::DuplicateKey(_))
            }),
            ("ff", |e| matches!(e, CborError::Malformed { .. })),
            ("5f6161ff", |e| matches!(e, CborError::Malformed { .. })),
        ];
        for (hex_bytes, check) in cases {
            let bytes = hex::decode(hex_bytes).unwrap();
            let err = decode(&bytes).expect_err(hex_bytes);
            assert!(check(&err), "{hex_bytes}: {err:?}");
        }
        let deep = [vec![0x81u8; MAX_DEPTH + 5], vec![0]].concat();
        assert_eq!(decode(&deep), Err(CborError::TooDeep));
    }

    #[test]
    fn get_looks_through_tags() {
        let item = decode(&map([("k", Cbor::Uint(7))]).encode_self_described()).unwrap();
        assert_eq!(item.get("k"), Some(&Cbor::Uint(7)));
        assert_eq!(item.get("missing"), None);
    }
}
