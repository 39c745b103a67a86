//! JSON messages: the one place serde_json encodes and decodes for the
//! runtimes, the workloads and the baselines, counting each document (see
//! [`crate::wire`] for what a message is). Elsewhere clippy refuses
//! serde_json's `to_*` / `from_*` and points here.
//!
//! A document counts once per encode and once per decode attempt, in the
//! process doing it: a body a proxy forwards without decoding it is not
//! counted again. Building a `Value` with [`json!`] is not an encode;
//! turning it into bytes with [`to_vec`] is.

// The wrappers themselves call the raw entry points.
#![allow(clippy::disallowed_methods)]

use serde::{Deserialize, Serialize};
pub use serde_json::{json, Error, Value};

/// Encodes one message.
pub fn to_vec<T: ?Sized + Serialize>(value: &T) -> Result<Vec<u8>, Error> {
    super::serialized(1);
    serde_json::to_vec(value)
}

/// Encodes one message as text (a header value).
pub fn to_string<T: ?Sized + Serialize>(value: &T) -> Result<String, Error> {
    super::serialized(1);
    serde_json::to_string(value)
}

/// Decodes one message.
pub fn from_slice<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, Error> {
    super::deserialized(1);
    serde_json::from_slice(bytes)
}

/// Decodes one message given as text (a header value).
pub fn from_str<'a, T: Deserialize<'a>>(text: &'a str) -> Result<T, Error> {
    super::deserialized(1);
    serde_json::from_str(text)
}

/// The SPRIGHT runtime's error answer `{"error": message}`
/// ([`crate::txn::error_json`], written without serde): one message
/// encoded, like any other.
pub fn error(message: &str) -> String {
    super::serialized(1);
    crate::txn::error_json(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::thread_totals;

    fn delta<T>(f: impl FnOnce() -> T) -> (T, (u64, u64)) {
        let (s0, d0) = thread_totals();
        let r = f();
        let (s1, d1) = thread_totals();
        (r, (s1 - s0, d1 - d0))
    }

    #[test]
    fn every_encode_and_decode_counts_one_message() {
        let (bytes, n) = delta(|| to_vec(&json!({ "a": [1, 2] })).unwrap());
        assert_eq!((bytes.as_slice(), n), (&br#"{"a":[1,2]}"#[..], (1, 0)));
        let (text, n) = delta(|| to_string(&"x").unwrap());
        assert_eq!((text.as_str(), n), ("\"x\"", (1, 0)));
        let (v, n) = delta(|| from_slice::<Value>(&bytes).unwrap());
        assert_eq!((v, n), (json!({ "a": [1, 2] }), (0, 1)));
        let (v, n) = delta(|| from_str::<u32>("7").unwrap());
        assert_eq!((v, n), (7, (0, 1)));
        let (e, n) = delta(|| error("no \"route\""));
        assert_eq!((e.as_str(), n), (r#"{"error":"no \"route\""}"#, (1, 0)));
    }

    #[test]
    fn a_failed_decode_still_counts() {
        let (r, n) = delta(|| from_slice::<Value>(b"{broken"));
        assert!(r.is_err());
        assert_eq!(n, (0, 1));
    }

    #[test]
    fn building_a_value_is_not_an_encode() {
        let (_, n) = delta(|| json!({ "error": "x" }));
        assert_eq!(n, (0, 0));
    }
}
