//! The transaction inside a slot: the request the gateway wrote once, a typed
//! state area for the chain's own use, and the response the chain builds.
//!
//! ```text
//! | TxnHeader (128 B) | app state (app_len) | path query cookie content-type body | response: content-type set-cookie body |
//! ```
//!
//! Functions read and write it in place - no serialization inside a chain.
//! Every length is re-checked on access: a slot is shared memory that any
//! function of the chain can write, so a bad length yields an empty field or
//! an error, never an out-of-bounds access.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::descriptor::FunctionId;

const TXN_MAGIC: u32 = 0x5458_4e31; // "TXN1"
pub const TXN_HEADER_SIZE: usize = 128;
/// Longest static sequence a route can name.
pub const MAX_SEQUENCE: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct TxnHeader {
    magic: u32,
    /// Route index in the chain (as in the chain file).
    pub route: u16,
    /// Position in the route's static sequence.
    pub hop: u16,
    method: u8,
    _r0: u8,
    /// Response status; 0 until some function replies.
    pub status: u16,
    app_len: u32,
    req: [u32; 5],
    resp: [u32; 3],
    seq_len: u16,
    seq: [u16; MAX_SEQUENCE],
    _r1: [u8; 46],
}

const _: () = assert!(std::mem::size_of::<TxnHeader>() == TXN_HEADER_SIZE);

/// Request fields in storage order.
#[derive(Clone, Copy)]
enum Req {
    Path = 0,
    Query = 1,
    Cookie = 2,
    ContentType = 3,
    Body = 4,
}

/// Response fields in storage order.
#[derive(Clone, Copy)]
enum Resp {
    ContentType = 0,
    SetCookie = 1,
    Body = 2,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
    Patch,
    Head,
    Other,
}

impl Method {
    pub fn parse(m: &str) -> Self {
        match m {
            "GET" => Self::Get,
            "POST" => Self::Post,
            "PUT" => Self::Put,
            "DELETE" => Self::Delete,
            "PATCH" => Self::Patch,
            "HEAD" => Self::Head,
            _ => Self::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Delete => "DELETE",
            Self::Patch => "PATCH",
            Self::Head => "HEAD",
            Self::Other => "OTHER",
        }
    }

    fn code(self) -> u8 {
        self as u8
    }

    fn from_code(c: u8) -> Self {
        [Self::Get, Self::Post, Self::Put, Self::Delete, Self::Patch, Self::Head].get(c as usize).copied().unwrap_or(Self::Other)
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TxnError {
    #[error("does not fit in the slot ({need} bytes needed, {have} available)")]
    TooLarge { need: usize, have: usize },
    #[error("slot does not hold a transaction")]
    NotATransaction,
    #[error("state type of {need} bytes exceeds the chain's app area of {have} bytes")]
    StateTooLarge { need: usize, have: usize },
    #[error("route sequence longer than {MAX_SEQUENCE}")]
    SequenceTooLong,
}

/// The request as the gateway received it.
pub struct Request<'a> {
    pub method: Method,
    pub path: &'a str,
    pub query: &'a str,
    pub cookie: &'a str,
    pub content_type: &'a str,
    pub body: &'a [u8],
}

/// The response as the chain left it.
#[derive(Debug, PartialEq, Eq)]
pub struct Response<'a> {
    pub status: u16,
    pub content_type: &'a str,
    pub set_cookie: &'a str,
    pub body: &'a [u8],
}

/// A transaction laid over a slot's payload.
pub struct Txn<'a> {
    buf: &'a mut [u8],
}

impl<'a> Txn<'a> {
    /// Writes a new transaction (the gateway's one copy of the request).
    pub fn create(buf: &'a mut [u8], app_len: usize, route: u16, sequence: &[FunctionId], req: &Request<'_>) -> Result<Self, TxnError> {
        if sequence.len() > MAX_SEQUENCE {
            return Err(TxnError::SequenceTooLong);
        }
        let fields: [&[u8]; 5] = [req.path.as_bytes(), req.query.as_bytes(), req.cookie.as_bytes(), req.content_type.as_bytes(), req.body];
        let need = TXN_HEADER_SIZE + app_len + fields.iter().map(|f| f.len()).sum::<usize>();
        if need > buf.len() {
            return Err(TxnError::TooLarge { need, have: buf.len() });
        }
        let mut seq = [0u16; MAX_SEQUENCE];
        for (s, f) in seq.iter_mut().zip(sequence) {
            *s = f.0;
        }
        let header = TxnHeader {
            magic: TXN_MAGIC,
            route,
            hop: 0,
            method: req.method.code(),
            _r0: 0,
            status: 0,
            app_len: app_len as u32,
            req: fields.map(|f| f.len() as u32),
            resp: [0; 3],
            seq_len: sequence.len() as u16,
            seq,
            _r1: [0; 46],
        };
        buf[..TXN_HEADER_SIZE].copy_from_slice(header.as_bytes());
        buf[TXN_HEADER_SIZE..TXN_HEADER_SIZE + app_len].fill(0);
        let mut off = TXN_HEADER_SIZE + app_len;
        for f in fields {
            buf[off..off + f.len()].copy_from_slice(f);
            off += f.len();
        }
        Ok(Self { buf })
    }

    /// Opens the transaction a received descriptor points at.
    pub fn open(buf: &'a mut [u8]) -> Result<Self, TxnError> {
        let h = TxnHeader::ref_from_bytes(buf.get(..TXN_HEADER_SIZE).ok_or(TxnError::NotATransaction)?)
            .map_err(|_| TxnError::NotATransaction)?;
        if h.magic != TXN_MAGIC {
            return Err(TxnError::NotATransaction);
        }
        Ok(Self { buf })
    }

    pub fn header(&self) -> &TxnHeader {
        TxnHeader::ref_from_bytes(&self.buf[..TXN_HEADER_SIZE]).expect("checked at open")
    }

    fn header_mut(&mut self) -> &mut TxnHeader {
        TxnHeader::mut_from_bytes(&mut self.buf[..TXN_HEADER_SIZE]).expect("checked at open")
    }

    fn app_len(&self) -> usize {
        (self.header().app_len as usize).min(self.buf.len().saturating_sub(TXN_HEADER_SIZE))
    }

    fn req_start(&self) -> usize {
        TXN_HEADER_SIZE + self.app_len()
    }

    fn req_end(&self) -> usize {
        let total: u64 = self.header().req.iter().map(|&l| l as u64).sum();
        (self.req_start() as u64 + total).min(self.buf.len() as u64) as usize
    }

    fn resp_start(&self) -> usize {
        self.req_end().next_multiple_of(8).min(self.buf.len())
    }

    /// Bytes `[start + sum(lens[..i]), + lens[i])`, empty if out of bounds.
    fn field(&self, start: usize, lens: &[u32], i: usize) -> &[u8] {
        let off = start as u64 + lens[..i].iter().map(|&l| l as u64).sum::<u64>();
        let end = off + lens[i] as u64;
        if end > self.buf.len() as u64 {
            return &[];
        }
        &self.buf[off as usize..end as usize]
    }

    fn req_field(&self, f: Req) -> &[u8] {
        let lens = self.header().req;
        self.field(self.req_start(), &lens, f as usize)
    }

    fn req_str(&self, f: Req) -> &str {
        std::str::from_utf8(self.req_field(f)).unwrap_or("")
    }

    pub fn request(&self) -> Request<'_> {
        Request {
            method: Method::from_code(self.header().method),
            path: self.req_str(Req::Path),
            query: self.req_str(Req::Query),
            cookie: self.req_str(Req::Cookie),
            content_type: self.req_str(Req::ContentType),
            body: self.req_field(Req::Body),
        }
    }

    /// The chain's typed state area (zeroed by the gateway), read and written
    /// in place by every function of the chain.
    pub fn state<T: FromBytes + IntoBytes + KnownLayout + Immutable>(&mut self) -> Result<&mut T, TxnError> {
        let need = std::mem::size_of::<T>();
        let have = self.app_len();
        if need > have {
            return Err(TxnError::StateTooLarge { need, have });
        }
        T::mut_from_bytes(&mut self.buf[TXN_HEADER_SIZE..TXN_HEADER_SIZE + need]).map_err(|_| TxnError::StateTooLarge { need, have })
    }

    /// [`Self::state`], or - when the chain's app area cannot hold `T` - a
    /// 500 answer naming the misconfigured `chain`, and `None`.
    pub fn state_or_error<T: FromBytes + IntoBytes + KnownLayout + Immutable>(&mut self, chain: &str) -> Option<&mut T> {
        if let Err(e) = self.state::<T>() {
            self.set_error(500, &format!("{chain} chain misconfigured: {e}"));
            return None;
        }
        self.state::<T>().ok()
    }

    /// Space available for a response.
    pub fn response_capacity(&self) -> usize {
        self.buf.len() - self.resp_start()
    }

    /// Sets the response (overwriting an earlier one).
    pub fn set_response(&mut self, status: u16, content_type: &str, set_cookie: &str, body: &[u8]) -> Result<(), TxnError> {
        let start = self.resp_start();
        let need = content_type.len() + set_cookie.len() + body.len();
        let have = self.buf.len() - start;
        if need > have {
            return Err(TxnError::TooLarge { need, have });
        }
        let mut off = start;
        for f in [content_type.as_bytes(), set_cookie.as_bytes(), body] {
            self.buf[off..off + f.len()].copy_from_slice(f);
            off += f.len();
        }
        let h = self.header_mut();
        h.resp = [content_type.len() as u32, set_cookie.len() as u32, body.len() as u32];
        h.status = status;
        Ok(())
    }

    /// Replaces the response with a JSON error `{"error": message}`.
    pub fn set_error(&mut self, status: u16, message: &str) {
        let body = crate::wire::json::error(message);
        if self.set_response(status, "application/json", "", body.as_bytes()).is_err() {
            let _ = self.set_response(status, "", "", b"");
        }
    }

    pub fn response(&self) -> Response<'_> {
        let lens = self.header().resp;
        let start = self.resp_start();
        let s = |i| std::str::from_utf8(self.field(start, &lens, i)).unwrap_or("");
        Response {
            status: self.header().status,
            content_type: s(Resp::ContentType as usize),
            set_cookie: s(Resp::SetCookie as usize),
            body: self.field(start, &lens, Resp::Body as usize),
        }
    }

    /// The request body, writable: functions may transform it in place.
    pub fn request_body_mut(&mut self) -> &mut [u8] {
        let lens = self.header().req;
        let off = self.req_start() as u64 + lens[..Req::Body as usize].iter().map(|&l| l as u64).sum::<u64>();
        let end = off + lens[Req::Body as usize] as u64;
        if end > self.buf.len() as u64 {
            return &mut [];
        }
        &mut self.buf[off as usize..end as usize]
    }

    /// The function after the current one in the route's static sequence.
    pub fn peek_next(&self) -> Option<FunctionId> {
        let h = self.header();
        let next = h.hop as usize + 1;
        (next < (h.seq_len as usize).min(MAX_SEQUENCE)).then(|| FunctionId(h.seq[next]))
    }

    /// The next function of the route's static sequence, advancing the hop;
    /// `None` after the last.
    pub fn advance(&mut self) -> Option<FunctionId> {
        let next = self.peek_next()?;
        self.header_mut().hop += 1;
        Some(next)
    }
}

/// Appends `text` to `out` as the inside of a JSON string.
pub fn json_escape(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                use std::fmt::Write;
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// `{"error":"..."}` with the message JSON-escaped.
pub fn error_json(message: &str) -> String {
    let mut s = String::with_capacity(message.len() + 12);
    s.push_str("{\"error\":\"");
    json_escape(message, &mut s);
    s.push_str("\"}");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(body: &[u8]) -> Request<'_> {
        Request { method: Method::Post, path: "/a/b", query: "x=1", cookie: "s=2", content_type: "text/plain", body }
    }

    #[derive(FromBytes, IntoBytes, KnownLayout, Immutable)]
    #[repr(C)]
    struct State {
        counter: u64,
        step: u32,
        _pad: u32,
    }

    #[test]
    fn request_state_and_response_round_trip() {
        let mut buf = vec![0u8; 1024];
        let mut t = Txn::create(&mut buf, 64, 3, &[FunctionId(1), FunctionId(2)], &req(b"hello")).unwrap();
        t.state::<State>().unwrap().counter = 41;
        let mut t = Txn::open(&mut buf).unwrap();
        let r = t.request();
        assert_eq!(
            (r.method, r.path, r.query, r.cookie, r.content_type, r.body),
            (Method::Post, "/a/b", "x=1", "s=2", "text/plain", &b"hello"[..])
        );
        assert_eq!(t.state::<State>().unwrap().counter, 41);
        assert_eq!(t.advance(), Some(FunctionId(2)));
        assert_eq!(t.advance(), None);
        t.set_response(201, "application/json", "sid=1", b"{}").unwrap();
        assert_eq!(t.response(), Response { status: 201, content_type: "application/json", set_cookie: "sid=1", body: b"{}" });
        assert_eq!(t.request().body, b"hello", "response never overwrites the request");
    }

    #[test]
    fn limits_are_errors_not_panics() {
        let mut small = vec![0u8; 200];
        assert!(matches!(Txn::create(&mut small, 64, 0, &[], &req(&[0; 100])), Err(TxnError::TooLarge { .. })));
        let mut buf = vec![0u8; 300];
        let mut t = Txn::create(&mut buf, 16, 0, &[], &req(b"x")).unwrap();
        assert!(matches!(t.state::<[u64; 4]>(), Err(TxnError::StateTooLarge { .. })));
        assert!(t.set_response(200, "", "", &[0; 500]).is_err());
        assert!(Txn::open(&mut [0u8; 256]).is_err());
    }

    #[test]
    fn corrupted_lengths_yield_empty_fields() {
        let mut buf = vec![0u8; 512];
        Txn::create(&mut buf, 0, 0, &[], &req(b"hello")).unwrap();
        // A misbehaving function scribbles over the header's lengths.
        buf[16..36].copy_from_slice(&[0xff; 20]);
        let t = Txn::open(&mut buf).unwrap();
        let r = t.request();
        assert!(r.body.is_empty() && r.path.is_empty());
        assert_eq!(t.response().body, b"");
    }

    #[test]
    fn error_bodies_are_valid_json() {
        assert_eq!(error_json("bad \"x\"\n"), "{\"error\":\"bad \\\"x\\\"\\u000a\"}");
    }
}
