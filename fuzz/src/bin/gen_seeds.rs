//! Writes the seed corpus (fuzz/corpus/<target>/) from the real code:
//! descriptors made with `Descriptor::new`, transactions with
//! `Txn::create`, the repository's chain files, and HTTP connections.
//!
//! `cargo run --release --features seedgen --bin gen_seeds` (from fuzz/).
//! It only adds or overwrites its own files; libFuzzer-found inputs kept in
//! the corpus by hand stay.

use std::path::{Path, PathBuf};

use spright::descriptor::{ChainId, Descriptor, Endpoint, FunctionId};
use spright::pool::{Lease, Pool, PoolGeometry, SlotMem};
use spright::txn::{Method, Request, Txn};
use zerocopy::IntoBytes;

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

/// The control byte of an HTTP seed (see `spright_fuzz::Plan`): every byte
/// at once unless `piece` says otherwise.
const ALL_AT_ONCE: u8 = 7 << 2;
const LINGER: u8 = 1;
const STOP: u8 = 2;

fn http(dir: &Path, name: &str, control: u8, text: &[u8]) {
    let mut b = vec![control];
    b.extend_from_slice(text);
    write(dir, name, &b);
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let corpus = root.join("corpus");

    // descriptor: the gens of the target's pool (slots 1 and 3 on their way
    // to chain 1 / function 1), made the way the target makes them.
    let pool = Pool::create(ChainId(1), PoolGeometry { slots: 4, slot_payload: 256 }).unwrap();
    let s: Vec<_> = (0..4).map(|_| pool.alloc(Lease::GATEWAY).unwrap()).collect();
    let to = Endpoint::new(ChainId(1), FunctionId(1));
    let dir = corpus.join("descriptor");
    let d1 = Descriptor::new(to, s[1].index, s[1].gen);
    let d3 = Descriptor::new(to, s[3].index, s[3].gen);
    write(&dir, "exact", d1.as_bytes());
    write(&dir, "exact-resent-abandoned", d3.resent().as_bytes());
    let five: Vec<u8> =
        (0..5u16).flat_map(|i| Descriptor::new(Endpoint::new(ChainId(1), FunctionId(i)), u32::from(i), 1).as_bytes().to_vec()).collect();
    write(&dir, "five-coalesced", &five);
    let mut mixed = b"odd".to_vec();
    mixed.extend_from_slice(d1.as_bytes());
    mixed.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
    mixed.extend_from_slice(Descriptor::new(Endpoint::gateway(ChainId(1)), 2, 1).as_bytes());
    mixed.extend_from_slice(&d1.as_bytes()[..9]);
    write(&dir, "sink-mixed", &mixed);

    // txn: transactions as the gateway writes them, and as functions leave them.
    let dir = corpus.join("txn");
    let req = |body: &'static [u8]| Request {
        method: Method::Post,
        path: "/transform",
        query: "x=1&ms=5",
        cookie: "shop_session-id=42",
        content_type: "text/plain",
        body,
    };
    let seq = [FunctionId(1), FunctionId(2), FunctionId(3)];
    let mut slot = vec![0u8; 1024];
    drop(Txn::create(SlotMem::private(&mut slot), 64, 0, &seq, &req(b"hello world")).unwrap());
    write(&dir, "created", &slot);
    {
        let mut t = Txn::open(SlotMem::private(&mut slot)).unwrap();
        t.state::<[u64; 2]>().unwrap()[1] = 7;
        t.advance();
        t.set_response(200, "application/json", "sid=1", b"{\"words\":2}").unwrap();
    }
    write(&dir, "answered", &slot);
    let long_seq: Vec<_> = (1..=16).map(FunctionId).collect();
    let mut slot = vec![0u8; 512];
    drop(Txn::create(SlotMem::private(&mut slot), 320, 3, &long_seq, &req(b"")).unwrap());
    write(&dir, "large-state-long-sequence", &slot);
    let mut slot = vec![0u8; 200];
    drop(Txn::create(SlotMem::private(&mut slot), 0, 0, &seq[..1], &req(b"x")).unwrap());
    write(&dir, "tiny", &slot);
    // A function scribbled over the request lengths (txn.rs's own test).
    let mut slot = vec![0u8; 512];
    drop(Txn::create(SlotMem::private(&mut slot), 0, 0, &[], &req(b"hello")).unwrap());
    slot[16..36].copy_from_slice(&[0xff; 20]);
    write(&dir, "corrupted-lengths", &slot);

    // chain_file: the repository's chain files and chain.rs's test file.
    let dir = corpus.join("chain_file");
    for (name, file) in [
        ("example", "../system/examples/chain.yaml"),
        ("boutique", "../workloads/boutique/chain.yaml"),
        ("motion", "../workloads/motion/chain.yaml"),
        ("parking", "../workloads/parking/chain.yaml"),
    ] {
        write(&dir, name, &std::fs::read(root.join(file)).unwrap());
    }
    write(
        &dir,
        "defaults",
        b"chains:\n  - name: a\n    functions:\n      - { id: 1, name: one, handler: h.one }\n      - { id: 2, name: two, handler: h.two, threads: 2 }\n    routes:\n      - { path: /x, sequence: [1, 2] }\n      - { path: /y, first: 2 }\n",
    );
    write(
        &dir,
        "two-chains-service-time",
        b"transport: ring\ngateway: { max_body_bytes: 1024, threads: 1 }\nchains:\n  - name: a\n    pool: { slots: 8, slot_size: 4096, app_bytes: 128 }\n    functions:\n      - { id: 1, name: one, handler: h.one, service_time: { ms: 2.5, mode: spin } }\n    routes:\n      - { path: /a/, first: 1 }\n  - name: b-2\n    functions:\n      - { id: 4095, name: last, handler: h.last, spawn: false, binary: ./bin/f }\n    routes:\n      - { path: /, sequence: [4095, 4095] }\n",
    );

    // gateway_http: connections to the example chain's gateway.
    let big_head = {
        let mut h = b"GET /echo HTTP/1.1\r\nhost: gw\r\nx-big: ".to_vec();
        h.extend(std::iter::repeat_n(b'a', 17 << 10));
        h.extend_from_slice(b"\r\n\r\n");
        h
    };
    for (dir, base) in [(corpus.join("gateway_http"), "/echo"), (corpus.join("baseline_front_door"), "/cart")] {
        let p = |s: &str| s.replace("{base}", base);
        http(
            &dir,
            "post",
            ALL_AT_ONCE,
            p("POST {base} HTTP/1.1\r\nhost: gw\r\ncontent-type: text/plain\r\ncontent-length: 11\r\n\r\nhello world").as_bytes(),
        );
        http(&dir, "pipelined", ALL_AT_ONCE, p("GET {base}?ms=0 HTTP/1.1\r\nhost: gw\r\ncookie: a=1\r\ncookie: b=2\r\n\r\nPOST /transform HTTP/1.1\r\nhost: gw\r\ncontent-length: 5\r\n\r\nabcdeHEAD /count HTTP/1.1\r\nhost: gw\r\n\r\nGET /nowhere HTTP/1.1\r\nhost: gw\r\nconnection: close\r\n\r\n").as_bytes());
        http(&dir, "chunked-byte-by-byte", 0, p("POST /transform HTTP/1.1\r\nhost: gw\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\ntrailer: x\r\n\r\n").as_bytes());
        http(
            &dir,
            "expect-continue",
            3 << 2,
            p("PUT {base} HTTP/1.1\r\nhost: gw\r\nexpect: 100-continue\r\ncontent-length: 4\r\n\r\nbody").as_bytes(),
        );
        http(
            &dir,
            "declared-too-large",
            ALL_AT_ONCE,
            p("POST {base} HTTP/1.1\r\nhost: gw\r\ncontent-length: 2000000\r\n\r\nxx").as_bytes(),
        );
        http(&dir, "truncated-body", ALL_AT_ONCE, p("POST {base} HTTP/1.1\r\nhost: gw\r\ncontent-length: 10\r\n\r\nabc").as_bytes());
        http(
            &dir,
            "bad-chunk",
            ALL_AT_ONCE,
            p("POST {base} HTTP/1.1\r\nhost: gw\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n").as_bytes(),
        );
        http(&dir, "slow-head-linger", ALL_AT_ONCE | LINGER, p("GET {base} HTTP/1.1\r\nhost: g").as_bytes());
        http(
            &dir,
            "slow-body-linger",
            ALL_AT_ONCE | LINGER,
            p("POST {base} HTTP/1.1\r\nhost: gw\r\ncontent-length: 10\r\n\r\nabc").as_bytes(),
        );
        http(
            &dir,
            "keep-alive-stop",
            (4 << 2) | STOP,
            p("GET /delay?ms=1 HTTP/1.1\r\nhost: gw\r\n\r\nGET /healthz HTTP/1.1\r\nhost: gw\r\n\r\n").as_bytes(),
        );
        http(&dir, "http10-non-utf8", ALL_AT_ONCE, b"POST /transform HTTP/1.0\r\ncontent-length: 4\r\n\r\n\xff\xfe\x00\x80");
        http(&dir, "garbage", ALL_AT_ONCE, b"GARBAGE\r\n\r\n\x00\x01 HTTP/9.9\r\n");
        http(&dir, "big-head", ALL_AT_ONCE, &big_head);
        // A 2xx answer to CONNECT starts a tunnel: no body, no more HTTP.
        http(&dir, "connect", ALL_AT_ONCE, b"CONNECT gw:80 HTTP/1.1\r\nhost: gw:80\r\n\r\nGET /echo HTTP/1.1\r\n\r\n");
    }
    println!("seeds written under {}", corpus.display());
}
