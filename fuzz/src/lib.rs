//! What the fuzz targets share: one client connection driven in memory
//! against a server's connection handler, and a check of the bytes the
//! server wrote back.
//!
//! An HTTP target's input is one connection's worth of client bytes behind
//! one control byte (see [`Plan`]). The connection is a
//! [`tokio::io::duplex`] pipe on a current-thread runtime whose clock is
//! paused: time only moves when every task waits, and then jumps to the
//! next timer. So "wait until the server has answered everything it can"
//! is a 1 ms sleep, and "stay connected past the client timeout" costs no
//! real time - both deterministic.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::runtime::Runtime;
use tokio::sync::watch;

/// Capacity of each direction of the in-memory connection.
const PIPE_BYTES: usize = 16 << 10;

/// How the client behaves, from the input's first byte:
///
/// | bits | meaning |
/// |---|---|
/// | 0 | linger: after sending, stay connected past the server's client timeout (408s, idle closes) |
/// | 1 | stop: after the server went idle, ask it to shut down gracefully before closing |
/// | 2-4 | write size: the rest is sent in pieces of 1, 2, 3, 7, 16, 64, 512 bytes or all at once (but in at most 256 pieces) |
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    pub linger: bool,
    pub stop: bool,
    pub piece: usize,
}

impl Plan {
    /// The plan and the connection's bytes; `None` for an empty input.
    pub fn split(data: &[u8]) -> Option<(Plan, &[u8])> {
        let (&c, rest) = data.split_first()?;
        let piece = [1, 2, 3, 7, 16, 64, 512, usize::MAX][usize::from(c >> 2 & 7)];
        Some((Plan { linger: c & 1 != 0, stop: c & 2 != 0, piece }, rest))
    }
}

/// The runtime every iteration runs on: one thread, paused clock.
pub fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().expect("a current-thread runtime")
}

/// Runs one connection to its end: `serve` gets the server's end of the
/// pipe and the shutdown signal; the client sends `input` as `plan` says,
/// waits until the server is idle (or, lingering, `client_timeout` more),
/// closes its sending side and reads until the server closes. Returns what
/// `serve` returned and every byte the server wrote.
pub async fn drive<S, F>(plan: Plan, input: &[u8], client_timeout: Duration, serve: S) -> (F::Output, Vec<u8>)
where
    S: FnOnce(DuplexStream, watch::Receiver<bool>) -> F,
    F: Future,
{
    let (client, server) = tokio::io::duplex(PIPE_BYTES);
    let (stop_tx, stop_rx) = watch::channel(false);
    let server = serve(server, stop_rx);
    let client = async move {
        let (mut rd, mut wr) = tokio::io::split(client);
        let send = async {
            // At most 256 writes: long inputs in small pieces cost time, not coverage.
            for piece in input.chunks(plan.piece.max(input.len().div_ceil(256))) {
                if wr.write_all(piece).await.is_err() {
                    break; // the server closed the connection
                }
                tokio::task::yield_now().await;
            }
            let wait = if plan.linger { client_timeout + Duration::from_secs(1) } else { Duration::from_millis(1) };
            tokio::time::sleep(wait).await;
            if plan.stop {
                let _ = stop_tx.send(true);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let _ = wr.shutdown().await;
            stop_tx
        };
        let receive = async {
            let mut out = Vec::new();
            let _ = rd.read_to_end(&mut out).await;
            out
        };
        let (_stop_tx, out) = tokio::join!(send, receive);
        out
    };
    tokio::join!(server, client)
}

/// One response as the check saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seen {
    /// 1 for HTTP/1.1, 0 for HTTP/1.0 (hyper's answer to an HTTP/1.0 request).
    pub minor: u8,
    pub status: u16,
    pub body_len: usize,
}

/// Checks that `out` is a sequence of complete, well-formed HTTP/1.1
/// responses (or HTTP/1.0 ones, see [`Seen::minor`]): status line
/// `HTTP/1.1 NNN reason` and every header line ending in CRLF, a
/// `content-length` on every response that may have a body, and exactly
/// that many body bytes - or none, for the answer to a HEAD request -
/// before the next response. Where both readings are possible, either
/// one that makes the rest a valid sequence will do. When the client sent
/// a `CONNECT` (`connect`), a 2xx without `content-length` may end the
/// stream: the tunnel's start, which has no body (RFC 9110, 9.3.6).
pub fn check_responses(out: &[u8], connect: bool) -> Result<Vec<Seen>, String> {
    let mut seen = Vec::new();
    let mut failed = HashMap::new();
    responses_from(out, 0, connect, &mut seen, &mut failed).map(|()| seen)
}

/// How a response's body is delimited.
enum Framing {
    /// No body (1xx, 204, 304).
    None,
    /// `content-length` bytes (or none, answering HEAD).
    Length(usize),
    /// A 2xx to CONNECT: a tunnel, no body, nothing more in HTTP.
    Tunnel,
}

/// [`check_responses`] from byte `at` on, appending to `seen`; `failed`
/// remembers the offsets from which no valid reading exists (so trying
/// both readings of every HEAD-like answer stays linear).
fn responses_from(out: &[u8], at: usize, connect: bool, seen: &mut Vec<Seen>, failed: &mut HashMap<usize, String>) -> Result<(), String> {
    if at == out.len() {
        return Ok(());
    }
    if let Some(e) = failed.get(&at) {
        return Err(e.clone());
    }
    let result = (|| {
        let (minor, status, head_len, framing) = head_at(out, at, connect)?;
        let body_at = at + head_len;
        let readings = match framing {
            Framing::None => vec![0],
            Framing::Length(0) => vec![0],
            Framing::Length(n) => vec![n, 0], // 0: the answer to a HEAD request
            Framing::Tunnel if body_at == out.len() => {
                seen.push(Seen { minor, status, body_len: 0 });
                return Ok(());
            }
            Framing::Tunnel => return Err(format!("response at byte {at} ({status}): bytes after the start of a CONNECT tunnel")),
        };
        let mut first_error = None;
        for body_len in readings {
            if body_at + body_len > out.len() {
                first_error.get_or_insert_with(|| format!("response at byte {at} ({status}): body of {body_len} bytes cut short"));
                continue;
            }
            seen.push(Seen { minor, status, body_len });
            match responses_from(out, body_at + body_len, connect, seen, failed) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    seen.pop();
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(first_error.expect("at least one reading"))
    })();
    if let Err(e) = &result {
        failed.insert(at, e.clone());
    }
    result
}

/// The response head at byte `at`: HTTP minor version, status, head
/// length, and how its body is delimited.
fn head_at(out: &[u8], at: usize, connect: bool) -> Result<(u8, u16, usize, Framing), String> {
    let rest = &out[at..];
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(rest) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err(format!("response at byte {at}: truncated head")),
        Err(e) => return Err(format!("response at byte {at}: {e}")),
    };
    let head = &rest[..head_len];
    let minor = match (resp.version, head.get(..9).unwrap_or_default()) {
        (Some(1), b"HTTP/1.1 ") => 1,
        (Some(0), b"HTTP/1.0 ") => 0,
        _ => return Err(format!("response at byte {at}: not an HTTP/1.x status line")),
    };
    if head.iter().enumerate().any(|(i, &b)| b == b'\n' && (i == 0 || head[i - 1] != b'\r')) {
        return Err(format!("response at byte {at}: a line not ended by CRLF"));
    }
    let status = resp.code.ok_or_else(|| format!("response at byte {at}: no status"))?;
    if !(100..=599).contains(&status) || resp.reason.is_none_or(str::is_empty) {
        return Err(format!("response at byte {at}: bad status line {status} {:?}", resp.reason));
    }
    if status < 200 || status == 204 || status == 304 {
        return Ok((minor, status, head_len, Framing::None));
    }
    let lengths: Vec<&[u8]> = resp.headers.iter().filter(|h| h.name.eq_ignore_ascii_case("content-length")).map(|h| h.value).collect();
    let framed = resp.headers.iter().any(|h| h.name.eq_ignore_ascii_case("transfer-encoding"));
    if connect && (200..300).contains(&status) && lengths.is_empty() && !framed {
        return Ok((minor, status, head_len, Framing::Tunnel));
    }
    let [len] = lengths[..] else {
        return Err(format!("response at byte {at} ({status}): {} content-length headers", lengths.len()));
    };
    let len = std::str::from_utf8(len)
        .ok()
        .and_then(|l| l.parse().ok())
        .ok_or_else(|| format!("response at byte {at}: bad content-length {len:?}"))?;
    Ok((minor, status, head_len, Framing::Length(len)))
}

/// The invariants of every HTTP front door's answers on one connection:
/// [`check_responses`], every status in `answers`, and HTTP/1.0 only if
/// the client spoke it. Panics (with the connection's bytes) otherwise.
/// (Whether the client sent `CONNECT` is judged by the word appearing in
/// its bytes: generous, never wrong the other way.)
///
/// With `SPRIGHT_FUZZ_SHOW` set, prints every connection (to read what a
/// seed or a crash input does: `SPRIGHT_FUZZ_SHOW=1 <target binary> FILE`).
pub fn check_connection(input: &[u8], out: &[u8], answers: &[u16]) -> Vec<Seen> {
    static SHOW: std::sync::LazyLock<bool> = std::sync::LazyLock::new(|| std::env::var_os("SPRIGHT_FUZZ_SHOW").is_some());
    if *SHOW {
        eprintln!("{}", show(input, out));
    }
    let connect = input.windows(7).any(|w| w == b"CONNECT");
    let seen = check_responses(out, connect).unwrap_or_else(|e| panic!("{e}\n{}", show(input, out)));
    if let Some(s) = seen.iter().find(|s| !answers.contains(&s.status)) {
        panic!("undocumented answer {}\n{}", s.status, show(input, out));
    }
    let spoke_10 = input.windows(8).any(|w| w == b"HTTP/1.0");
    assert!(spoke_10 || seen.iter().all(|s| s.minor == 1), "an HTTP/1.0 answer to HTTP/1.1\n{}", show(input, out));
    seen
}

/// Input and output of a failed connection, for the panic message.
pub fn show(input: &[u8], out: &[u8]) -> String {
    format!("input:\n{}\noutput:\n{}", String::from_utf8_lossy(input), String::from_utf8_lossy(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_response_check_reads_heads_bodies_and_head_answers() {
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
        let head = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n";
        let cont = b"HTTP/1.1 100 Continue\r\n\r\n";
        let statuses = |out: &[u8]| check_responses(out, false).map(|s| s.iter().map(|s| (s.status, s.body_len)).collect::<Vec<_>>());
        assert_eq!(statuses(&[&cont[..], ok, head, ok].concat()), Ok(vec![(100, 0), (200, 2), (200, 0), (200, 2)]));
        assert_eq!(statuses(b""), Ok(vec![]));
        // A HEAD answer whose content length lands on "HTTP/" in the next
        // response's body: the other reading is found.
        let tricky = b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\n{\"HTTP/\":1}";
        let head_11 = b"HTTP/1.1 200 OK\r\ncontent-length: 41\r\n\r\n";
        assert_eq!(statuses(&[&head_11[..], tricky].concat()), Ok(vec![(200, 0), (200, 11)]));
        for bad in [
            &b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\n{}"[..],
            b"HTTP/1.1 200 OK\ncontent-length: 2\r\n\r\n{}",
            b"HTTP/1.1 200 OK\r\n\r\n{}",
            b"HTTP/2 200 OK\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\ngarbage",
        ] {
            assert!(check_responses(bad, false).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        // The start of a CONNECT tunnel: last, without a body.
        let tunnel = b"HTTP/1.1 200 OK\r\ndate: x\r\n\r\n";
        assert_eq!(check_responses(tunnel, true).map(|s| s.len()), Ok(1));
        assert!(check_responses(tunnel, false).is_err(), "only after a CONNECT");
        assert!(check_responses(&[&tunnel[..], ok].concat(), true).is_err(), "nothing after it");
    }
}
