//! Form messages: a non-empty `application/x-www-form-urlencoded` body is
//! decoded here (one message), and so is a `multipart/form-data` body (split into
//! its parts by the workload's parser, counted here). Every frontend of
//! every mode parses a request's form once, so forms count the same in
//! every mode. A query string is part of the HTTP request target, already
//! counted with the HTTP message: [`decode_query`] does not count it again.

// A wrapper counts (clippy refuses `wire::deserialized` elsewhere).
#![allow(clippy::disallowed_methods)]

/// Decodes one urlencoded form body into its pairs (see
/// [`crate::form::parse_urlencoded`]). An empty body carries no message
/// and counts nothing.
pub fn decode(body: &str) -> Vec<(String, String)> {
    if !body.is_empty() {
        super::deserialized(1);
    }
    crate::form::parse_urlencoded(body)
}

/// A query string's pairs: not a message of its own (counted with the
/// HTTP request that carries it).
pub fn decode_query(query: &str) -> Vec<(String, String)> {
    crate::form::parse_urlencoded(query)
}

/// One multipart body split by `split` (the workload's own parser).
pub fn multipart<T>(body: &[u8], split: impl FnOnce(&[u8]) -> T) -> T {
    super::deserialized(1);
    split(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::thread_totals;

    #[test]
    fn a_form_body_counts_a_query_or_an_empty_body_does_not() {
        let t0 = thread_totals();
        assert_eq!(decode("a=1+2&b=%41"), vec![("a".into(), "1 2".into()), ("b".into(), "A".into())]);
        let t1 = thread_totals();
        assert_eq!(decode_query("a=1"), vec![("a".into(), "1".into())]);
        let t2 = thread_totals();
        assert_eq!(multipart(b"--x--", |b| b.len()), 5);
        let t3 = thread_totals();
        assert!(decode("").is_empty());
        let t4 = thread_totals();
        assert_eq!([t1.1 - t0.1, t2.1 - t1.1, t3.1 - t2.1, t4.1 - t3.1], [1, 0, 1, 0]);
        assert_eq!(t4.0, t0.0, "decoding serializes nothing");
    }
}
