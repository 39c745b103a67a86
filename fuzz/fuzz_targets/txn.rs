//! The transaction's typed access to a slot: [`Txn::open`] on arbitrary
//! slot bytes (what a buggy or hostile function of the chain may leave),
//! then every accessor a function or the gateway uses.
//!
//! Input: the slot's payload (its length is the slot's). Invariants:
//! * nothing panics or reads/writes outside the slot, whatever the lengths
//!   in the header say;
//! * `state::<T>()` succeeds exactly when `T` fits the app area, and what
//!   is written through it is there when the slot is opened again;
//! * `advance` walks the rest of the route's sequence and stops;
//! * a response that fits is read back exactly as set, never disturbs the
//!   request, and `into_response` (the gateway's copy out) agrees with
//!   `response()`; one that does not fit is an error, after which
//!   `set_error` still leaves an answer;
//! * the request read out round-trips through [`Txn::create`].

#![no_main]

use libfuzzer_sys::fuzz_target;
use spright::descriptor::FunctionId;
use spright::pool::SlotMem;
use spright::txn::{Method, OwnedResponse, Request, Txn, TxnError, MAX_SEQUENCE, TXN_HEADER_SIZE};

/// The request, copied out.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Req {
    method: Method,
    path: String,
    query: String,
    cookie: String,
    content_type: String,
    body: Vec<u8>,
}

fn request(t: &Txn<'_>) -> Req {
    let r = t.request();
    Req {
        method: r.method,
        path: r.path.into(),
        query: r.query.into(),
        cookie: r.cookie.into(),
        content_type: r.content_type.into(),
        body: r.body.into(),
    }
}

fn response(t: &Txn<'_>) -> OwnedResponse {
    let r = t.response();
    OwnedResponse { status: r.status, content_type: r.content_type.into(), set_cookie: r.set_cookie.into(), body: r.body.into() }
}

const SMALL: [u32; 2] = [0xa1a1_a1a1, 0xb2b2_b2b2];
const LARGE_LAST: u64 = 0xc3c3_c3c3_c3c3_c3c3;

fuzz_target!(|data: &[u8]| {
    let len = data.len();
    let mut slot = data.to_vec();
    let mem = SlotMem::private(&mut slot);
    let mut t = match Txn::open(mem) {
        Ok(t) => t,
        Err(e) => {
            assert_eq!(e, TxnError::NotATransaction);
            return;
        }
    };
    let header = *t.header();
    let req = request(&t);
    let _ = response(&t);
    let app = {
        // The app area as the transaction sees it: clipped to the slot.
        let bytes = header.as_bytes_app_len();
        (bytes as usize).min(len - TXN_HEADER_SIZE)
    };

    // Typed state: two sizes; the larger reloads what the smaller wrote.
    match t.state::<[u32; 2]>() {
        Ok(s) => *s = SMALL,
        Err(e) => assert!(app < 8, "{e}"),
    }
    let large_fits = match t.state::<[u64; 40]>() {
        Ok(s) => {
            assert_eq!(s[0].to_ne_bytes()[..], *zerocopy::IntoBytes::as_bytes(&SMALL));
            s[39] = LARGE_LAST;
            true
        }
        Err(e) => {
            assert!(app < 320, "{e}");
            false
        }
    };

    // The route's sequence: walk the rest of it.
    let mut hops = 0;
    while let Some(next) = t.peek_next() {
        assert_eq!(t.advance(), Some(next));
        hops += 1;
        assert!(hops < MAX_SEQUENCE);
    }
    assert_eq!(t.advance(), None);

    // The request body, rewritten in place.
    t.rewrite_request_body(|b| b.make_ascii_uppercase());
    let mut upper = req.clone();
    upper.body.make_ascii_uppercase();
    assert_eq!(request(&t), upper);

    // A response: the request echoed.
    let status = 200 + header.route % 400;
    let set = t.set_response(status, &req.content_type, &req.cookie, &req.body);
    let expected = match set {
        Ok(()) => {
            let r =
                OwnedResponse { status, content_type: req.content_type.clone(), set_cookie: req.cookie.clone(), body: req.body.clone() };
            assert_eq!(response(&t), r);
            assert!(req.content_type.len() + req.cookie.len() + req.body.len() <= t.response_capacity());
            r
        }
        Err(TxnError::TooLarge { need, have }) => {
            assert!(need > have && have == t.response_capacity());
            t.set_error(503, "does not fit");
            let r = response(&t);
            assert_eq!(r.status, 503);
            r
        }
        Err(e) => panic!("set_response: {e}"),
    };
    drop(t);

    // Opened again: everything written is there, the request untouched.
    let mut t = Txn::open(mem).expect("still a transaction");
    assert_eq!(t.header().hop, header.hop + hops as u16);
    assert_eq!(request(&t), upper);
    assert_eq!(response(&t), expected);
    if app >= 8 {
        assert_eq!(*t.state::<[u32; 2]>().unwrap(), SMALL);
    }
    if large_fits {
        assert_eq!(t.state::<[u64; 40]>().unwrap()[39], LARGE_LAST);
    }
    drop(t);
    assert_eq!(Txn::open(mem).unwrap().into_response(), expected);

    // The request read out, written into a fresh slot of the same size.
    let mut fresh = vec![0u8; len];
    let fresh = SlotMem::private(&mut fresh);
    let r = Request {
        method: req.method,
        path: &req.path,
        query: &req.query,
        cookie: &req.cookie,
        content_type: &req.content_type,
        body: &req.body,
    };
    let need = TXN_HEADER_SIZE + app + req.path.len() + req.query.len() + req.cookie.len() + req.content_type.len() + req.body.len();
    match Txn::create(fresh, app, header.route, &[FunctionId(1), FunctionId(2)], &r) {
        Ok(t) => {
            assert!(need <= len);
            assert_eq!(request(&t), req);
            assert_eq!(t.peek_next(), Some(FunctionId(2)));
        }
        Err(e) => assert!(need > len, "{e}"),
    };
});

/// The header's `app_len`, which has no accessor: bytes 12..16.
trait AppLen {
    fn as_bytes_app_len(&self) -> u32;
}

impl AppLen for spright::txn::TxnHeader {
    fn as_bytes_app_len(&self) -> u32 {
        let b = zerocopy::IntoBytes::as_bytes(self);
        u32::from_ne_bytes(b[12..16].try_into().unwrap())
    }
}
