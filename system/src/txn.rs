//! The transaction inside a slot: the request the gateway wrote once, a typed
//! state area for the chain's own use, and the response the chain builds.
//!
//! ```text
//! | TxnHeader (128 B) | app state (app_len) | path query cookie content-type body | response: content-type set-cookie body |
//! ```
//!
//! Functions work on it where it lies - no serialization inside a chain; the
//! bytes they use cross the shared-memory boundary as copies ([`SlotMem`]).
//! Every length is re-checked on access: a slot is shared memory that any
//! function of the chain can write, so a bad length yields an empty field or
//! an error, never an out-of-bounds access.

use std::cell::OnceCell;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::descriptor::FunctionId;
use crate::pool::SlotMem;

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

/// The response as owned buffers, copied out of the slot once.
#[derive(Debug, PartialEq, Eq)]
pub struct OwnedResponse {
    pub status: u16,
    pub content_type: String,
    pub set_cookie: String,
    pub body: Vec<u8>,
}

/// A transaction laid over a slot's payload.
///
/// The slot is shared memory ([`SlotMem`]): the transaction reads what it
/// needs into private copies - the header at open, the request and the
/// response on first use, the typed state on first use - and writes back
/// what changed: responses and hops at once, the typed state when the
/// transaction is dropped (before the slot is handed on).
pub struct Txn<'a> {
    mem: SlotMem<'a>,
    header: TxnHeader,
    request: OnceCell<Vec<u8>>,
    response: OnceCell<Vec<u8>>,
    /// The state area's private copy (8-aligned) and how many bytes of it
    /// are loaded; written back on drop.
    state: Vec<u64>,
    state_len: usize,
}

impl<'a> Txn<'a> {
    /// Writes a new transaction (the gateway's one copy of the request).
    pub fn create(mem: SlotMem<'a>, app_len: usize, route: u16, sequence: &[FunctionId], req: &Request<'_>) -> Result<Self, TxnError> {
        if sequence.len() > MAX_SEQUENCE {
            return Err(TxnError::SequenceTooLong);
        }
        let fields: [&[u8]; 5] = [req.path.as_bytes(), req.query.as_bytes(), req.cookie.as_bytes(), req.content_type.as_bytes(), req.body];
        let need = TXN_HEADER_SIZE + app_len + fields.iter().map(|f| f.len()).sum::<usize>();
        if need > mem.len() {
            return Err(TxnError::TooLarge { need, have: mem.len() });
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
        mem.write_obj(0, &header);
        mem.zero(TXN_HEADER_SIZE, app_len);
        let mut off = TXN_HEADER_SIZE + app_len;
        for f in fields {
            mem.write(off, f);
            off += f.len();
        }
        Ok(Self::with_header(mem, header))
    }

    /// Opens the transaction a received descriptor points at.
    pub fn open(mem: SlotMem<'a>) -> Result<Self, TxnError> {
        let header: TxnHeader = mem.read_obj(0).ok_or(TxnError::NotATransaction)?;
        if header.magic != TXN_MAGIC {
            return Err(TxnError::NotATransaction);
        }
        Ok(Self::with_header(mem, header))
    }

    fn with_header(mem: SlotMem<'a>, header: TxnHeader) -> Self {
        Self { mem, header, request: OnceCell::new(), response: OnceCell::new(), state: Vec::new(), state_len: 0 }
    }

    /// The header as read at open (and changed since through this handle).
    pub fn header(&self) -> &TxnHeader {
        &self.header
    }

    fn write_header(&self) {
        self.mem.write_obj(0, &self.header);
    }

    fn app_len(&self) -> usize {
        (self.header.app_len as usize).min(self.mem.len().saturating_sub(TXN_HEADER_SIZE))
    }

    fn req_start(&self) -> usize {
        TXN_HEADER_SIZE + self.app_len()
    }

    fn req_end(&self) -> usize {
        let total: u64 = self.header.req.iter().map(|&l| l as u64).sum();
        (self.req_start() as u64 + total).min(self.mem.len() as u64) as usize
    }

    fn resp_start(&self) -> usize {
        self.req_end().next_multiple_of(8).min(self.mem.len())
    }

    /// A private copy of `[start, end)` of the slot.
    fn copy_area(&self, start: usize, end: usize) -> Vec<u8> {
        self.mem.read_vec(start, end.saturating_sub(start)).unwrap_or_default()
    }

    /// Field `i` of an area starting at `start` (whose copy is `area`):
    /// empty when its length runs past the area.
    fn field<'b>(area: &'b [u8], lens: &[u32], i: usize) -> &'b [u8] {
        let off = lens[..i].iter().map(|&l| l as u64).sum::<u64>();
        let end = off + lens[i] as u64;
        area.get(off as usize..end as usize).filter(|_| end <= area.len() as u64).unwrap_or(&[])
    }

    fn request_area(&self) -> &[u8] {
        self.request.get_or_init(|| self.copy_area(self.req_start(), self.req_end()))
    }

    pub fn request(&self) -> Request<'_> {
        let area = self.request_area();
        let lens = self.header.req;
        let s = |f: Req| std::str::from_utf8(Self::field(area, &lens, f as usize)).unwrap_or("");
        Request {
            method: Method::from_code(self.header.method),
            path: s(Req::Path),
            query: s(Req::Query),
            cookie: s(Req::Cookie),
            content_type: s(Req::ContentType),
            body: Self::field(area, &lens, Req::Body as usize),
        }
    }

    /// The chain's typed state area (zeroed by the gateway), shared by every
    /// function of the chain: a private copy, written back when this
    /// transaction is dropped.
    pub fn state<T: FromBytes + IntoBytes + KnownLayout + Immutable>(&mut self) -> Result<&mut T, TxnError> {
        let need = std::mem::size_of::<T>();
        let have = self.app_len();
        if need > have || std::mem::align_of::<T>() > std::mem::align_of::<u64>() {
            return Err(TxnError::StateTooLarge { need, have });
        }
        if self.state_len < need {
            self.write_back_state();
            self.state = vec![0u64; need.div_ceil(8)];
            self.mem.read(TXN_HEADER_SIZE, &mut self.state.as_mut_bytes()[..need]);
            self.state_len = need;
        }
        T::mut_from_bytes(&mut self.state.as_mut_bytes()[..need]).map_err(|_| TxnError::StateTooLarge { need, have })
    }

    fn write_back_state(&mut self) {
        if self.state_len > 0 {
            self.mem.write(TXN_HEADER_SIZE, &self.state.as_bytes()[..self.state_len]);
        }
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
        self.mem.len() - self.resp_start()
    }

    /// Sets the response (overwriting an earlier one).
    pub fn set_response(&mut self, status: u16, content_type: &str, set_cookie: &str, body: &[u8]) -> Result<(), TxnError> {
        let start = self.resp_start();
        let need = content_type.len() + set_cookie.len() + body.len();
        let have = self.mem.len() - start;
        if need > have {
            return Err(TxnError::TooLarge { need, have });
        }
        let mut off = start;
        for f in [content_type.as_bytes(), set_cookie.as_bytes(), body] {
            self.mem.write(off, f);
            off += f.len();
        }
        self.header.resp = [content_type.len() as u32, set_cookie.len() as u32, body.len() as u32];
        self.header.status = status;
        self.write_header();
        self.response.take();
        Ok(())
    }

    /// Replaces the response with a JSON error `{"error": message}`.
    pub fn set_error(&mut self, status: u16, message: &str) {
        let body = crate::wire::json::error(message);
        if self.set_response(status, "application/json", "", body.as_bytes()).is_err() {
            let _ = self.set_response(status, "", "", b"");
        }
    }

    fn response_end(&self) -> usize {
        let total: u64 = self.header.resp.iter().map(|&l| l as u64).sum();
        (self.resp_start() as u64 + total).min(self.mem.len() as u64) as usize
    }

    pub fn response(&self) -> Response<'_> {
        let area = self.response.get_or_init(|| self.copy_area(self.resp_start(), self.response_end()));
        let lens = self.header.resp;
        let s = |i: Resp| std::str::from_utf8(Self::field(area, &lens, i as usize)).unwrap_or("");
        Response {
            status: self.header.status,
            content_type: s(Resp::ContentType),
            set_cookie: s(Resp::SetCookie),
            body: Self::field(area, &lens, Resp::Body as usize),
        }
    }

    /// The response copied straight out of the slot into owned buffers: the
    /// gateway's one copy out.
    pub fn into_response(self) -> OwnedResponse {
        let start = self.resp_start();
        let lens = self.header.resp.map(|l| l as usize);
        let field = |off: &mut usize, i: Resp| {
            let v = self.mem.read_vec(*off, lens[i as usize]).unwrap_or_default();
            *off += lens[i as usize];
            v
        };
        let mut off = start;
        let text = |v: Vec<u8>| String::from_utf8(v).unwrap_or_default();
        let content_type = text(field(&mut off, Resp::ContentType));
        let set_cookie = text(field(&mut off, Resp::SetCookie));
        let body = field(&mut off, Resp::Body);
        OwnedResponse { status: self.header.status, content_type, set_cookie, body }
    }

    /// Rewrites the request body in place (same length): `edit` works on a
    /// private copy that is written back.
    pub fn rewrite_request_body(&mut self, edit: impl FnOnce(&mut [u8])) {
        let mut body = self.request().body.to_vec();
        edit(&mut body);
        let lens = self.header.req;
        let off = self.req_start() as u64 + lens[..Req::Body as usize].iter().map(|&l| l as u64).sum::<u64>();
        if off + body.len() as u64 <= self.req_end() as u64 {
            self.mem.write(off as usize, &body);
        }
        self.request.take();
    }

    /// The function after the current one in the route's static sequence.
    pub fn peek_next(&self) -> Option<FunctionId> {
        let h = &self.header;
        let next = h.hop as usize + 1;
        (next < (h.seq_len as usize).min(MAX_SEQUENCE)).then(|| FunctionId(h.seq[next]))
    }

    /// The next function of the route's static sequence, advancing the hop;
    /// `None` after the last.
    pub fn advance(&mut self) -> Option<FunctionId> {
        let next = self.peek_next()?;
        self.header.hop += 1;
        self.write_header();
        Some(next)
    }
}

impl Drop for Txn<'_> {
    fn drop(&mut self) {
        self.write_back_state();
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
        let mem = SlotMem::private(&mut buf);
        let mut t = Txn::create(mem, 64, 3, &[FunctionId(1), FunctionId(2)], &req(b"hello")).unwrap();
        t.state::<State>().unwrap().counter = 41;
        drop(t);
        let mut t = Txn::open(mem).unwrap();
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
        t.rewrite_request_body(|b| b.make_ascii_uppercase());
        assert_eq!(t.request().body, b"HELLO");
        drop(t);
        let t = Txn::open(mem).unwrap();
        assert_eq!(
            t.into_response(),
            OwnedResponse { status: 201, content_type: "application/json".into(), set_cookie: "sid=1".into(), body: b"{}".to_vec() }
        );
    }

    #[test]
    fn limits_are_errors_not_panics() {
        let mut small = vec![0u8; 200];
        assert!(matches!(Txn::create(SlotMem::private(&mut small), 64, 0, &[], &req(&[0; 100])), Err(TxnError::TooLarge { .. })));
        let mut buf = vec![0u8; 300];
        let mut t = Txn::create(SlotMem::private(&mut buf), 16, 0, &[], &req(b"x")).unwrap();
        assert!(matches!(t.state::<[u64; 4]>(), Err(TxnError::StateTooLarge { .. })));
        assert!(t.set_response(200, "", "", &[0; 500]).is_err());
        assert!(Txn::open(SlotMem::private(&mut [0u8; 256])).is_err());
    }

    #[test]
    fn corrupted_lengths_yield_empty_fields() {
        let mut buf = vec![0u8; 512];
        drop(Txn::create(SlotMem::private(&mut buf), 0, 0, &[], &req(b"hello")).unwrap());
        // A misbehaving function scribbles over the header's lengths.
        buf[16..36].copy_from_slice(&[0xff; 20]);
        let t = Txn::open(SlotMem::private(&mut buf)).unwrap();
        let r = t.request();
        assert!(r.body.is_empty() && r.path.is_empty());
        assert_eq!(t.response().body, b"");
    }

    #[test]
    fn error_bodies_are_valid_json() {
        assert_eq!(error_json("bad \"x\"\n"), "{\"error\":\"bad \\\"x\\\"\\u000a\"}");
    }
}
