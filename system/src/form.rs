//! `application/x-www-form-urlencoded` and query strings, for handlers.

/// `a=1&b=x+y` as pairs, percent-decoded ('+' is a space). Malformed
/// escapes are kept literally.
pub fn parse_urlencoded(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(&k.replace('+', " ")), percent_decode(&v.replace('+', " ")))
        })
        .collect()
}

/// Decodes `%XX` escapes.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if let Some(v) = b.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes() {
        assert_eq!(
            parse_urlencoded("a=1+2&b=%41%zz&c&d=%4"),
            vec![("a".into(), "1 2".into()), ("b".into(), "A%zz".into()), ("c".into(), "".into()), ("d".into(), "%4".into())]
        );
        assert_eq!(percent_decode("%41"), "A");
    }
}
