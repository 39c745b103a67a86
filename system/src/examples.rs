//! The example chain's handlers (`system/examples/chain.yaml`), built into
//! the `spright` binary: parse -> transform -> render, plus `delay`.
//!
//! * `example.parse` counts words and bytes of the text body into the
//!   chain's typed state (400 for a non-UTF-8 body);
//! * `example.transform` upper-cases the body in place in the slot;
//! * `example.render` writes the JSON response from state and body;
//! * `example.delay` sleeps `?ms=N` (at most 60 000) and replies - for
//!   timeouts, exhaustion and crash tests.

use std::time::Duration;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::descriptor::FunctionId;
use crate::sdk::{Action, Registry};
use crate::txn::{json_escape, Txn};

/// The render function's id in the example chain (parse calls it directly
/// when its route has no static sequence: direct function routing).
const RENDER: FunctionId = FunctionId(3);

/// The example chain's per-request state, shared in place by its functions.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct ExampleState {
    pub words: u32,
    pub bytes: u32,
    pub hops: u32,
    pub transformed: u32,
}

fn parse(txn: &mut Txn<'_>) -> Action {
    let (words, bytes) = match std::str::from_utf8(txn.request().body) {
        Ok(text) => (text.split_whitespace().count() as u32, text.len() as u32),
        Err(_) => {
            txn.set_error(400, "body must be UTF-8 text");
            return Action::Reply;
        }
    };
    let Some(st) = txn.state_or_error::<ExampleState>("example") else {
        return Action::Reply;
    };
    st.words = words;
    st.bytes = bytes;
    st.hops += 1;
    match txn.peek_next() {
        Some(_) => Action::Next,
        None => Action::Call(RENDER),
    }
}

fn transform(txn: &mut Txn<'_>) -> Action {
    txn.rewrite_request_body(|b| b.make_ascii_uppercase());
    let Some(st) = txn.state_or_error::<ExampleState>("example") else {
        return Action::Reply;
    };
    st.transformed = 1;
    st.hops += 1;
    Action::Next
}

fn render(txn: &mut Txn<'_>) -> Action {
    let Some(st) = txn.state_or_error::<ExampleState>("example") else {
        return Action::Reply;
    };
    st.hops += 1;
    let (words, bytes, hops, transformed) = (st.words, st.bytes, st.hops, st.transformed != 0);
    let mut json = format!("{{\"words\":{words},\"bytes\":{bytes},\"hops\":{hops},\"transformed\":{transformed},\"text\":\"");
    json_escape(&String::from_utf8_lossy(txn.request().body), &mut json);
    json.push_str("\"}");
    if let Err(e) = txn.set_response(200, "application/json", "", json.as_bytes()) {
        txn.set_error(507, &format!("response does not fit the slot: {e}"));
    }
    Action::Reply
}

fn delay(txn: &mut Txn<'_>) -> Action {
    let ms =
        txn.request().query.split('&').find_map(|kv| kv.strip_prefix("ms=")).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0).min(60_000);
    std::thread::sleep(Duration::from_millis(ms));
    let body = format!("{{\"slept_ms\":{ms}}}");
    let _ = txn.set_response(200, "application/json", "", body.as_bytes());
    Action::Reply
}

/// The example handlers.
pub fn registry() -> Registry {
    let mut r = Registry::new();
    r.register("example.parse", parse)
        .register("example.transform", transform)
        .register("example.render", render)
        .register("example.delay", delay);
    r
}
