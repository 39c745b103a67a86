//! The chain-file parser: [`ChainFile::parse`] on arbitrary text.
//!
//! Invariants: it never panics, and a file it accepts satisfies every
//! rule its validation documents (re-checked here independently), so what
//! the deployment builds from it is buildable: pool geometries
//! [`spright::pool::Pool::create`] takes, and slots a transaction of every
//! route fits in ([`Txn::create`] with a small request succeeds).

#![no_main]

use std::collections::{BTreeSet, HashSet};

use libfuzzer_sys::fuzz_target;
use spright::control::chain::ChainFile;
use spright::pool::SlotMem;
use spright::txn::{Method, Request, Txn, MAX_SEQUENCE, TXN_HEADER_SIZE};

fn check(f: &ChainFile) {
    let g = &f.gateway;
    assert!(g.max_header_bytes >= 8192 && g.request_timeout_ms > 0 && g.client_timeout_ms > 0);
    assert!((1..=64).contains(&g.threads));
    assert!(!f.chains.is_empty() && f.chains.len() <= 4096);
    let mut names = HashSet::new();
    let mut paths = HashSet::new();
    for (i, (id, c)) in f.chains().enumerate() {
        assert_eq!(usize::from(id.0), i + 1, "chain ids are 1-based in file order");
        assert!(!c.name.is_empty() && c.name.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_'), "{:?}", c.name);
        assert!(names.insert(c.name.clone()), "chain {:?} twice", c.name);
        assert_eq!(f.chain_by_name(&c.name).map(|(found, _)| found), Some(id));
        let p = &c.pool;
        assert!((1..=65536).contains(&p.slots) && (1024..=64 << 20).contains(&p.slot_size));
        assert!((p.app_bytes as usize + TXN_HEADER_SIZE) * 2 <= p.slot_size as usize);
        let geometry = p.geometry();
        assert!(geometry.slots >= 1 && geometry.slots <= 1 << 20 && geometry.slot_payload >= 256, "Pool::create would refuse {geometry:?}");
        assert!(!c.functions.is_empty());
        let mut ids = BTreeSet::new();
        for func in &c.functions {
            assert!((1..=4095).contains(&func.id), "function id {}", func.id);
            assert!(ids.insert(func.id), "function id {} twice", func.id);
            assert!(!func.handler.is_empty() && (1..=1024).contains(&func.threads));
            if let Some(st) = func.service_time {
                assert!((0.0..=600_000.0).contains(&st.ms), "service time {}", st.ms);
            }
            assert_eq!(c.function(func.function_id()).map(|x| x.id), Some(func.id));
        }
        assert_eq!(c.ring_count(), u32::from(*ids.last().expect("functions")) + 1);
        assert!(!c.routes.is_empty());
        for (r, route) in c.routes.iter().enumerate() {
            assert!(route.path.starts_with('/'), "route {:?}", route.path);
            assert!(paths.insert(route.path.trim_end_matches('/').to_string()), "route {:?} twice", route.path);
            assert!(route.first.is_some() != route.sequence.is_some(), "route {:?}: first xor sequence", route.path);
            let seq = route.sequence();
            assert!((1..=MAX_SEQUENCE).contains(&seq.len()));
            assert!(seq.iter().all(|f| ids.contains(&f.0)), "route {:?} names an undefined function", route.path);
            // A slot of this chain holds a transaction of this route.
            if p.slot_size <= 1 << 20 {
                let mut slot = vec![0u8; p.slot_size as usize];
                let req = Request { method: Method::Get, path: &route.path, query: "", cookie: "", content_type: "", body: b"" };
                if route.path.len() + TXN_HEADER_SIZE + p.app_bytes as usize <= slot.len() {
                    Txn::create(SlotMem::private(&mut slot), p.app_bytes as usize, r as u16, &seq, &req)
                        .expect("a route's transaction fits");
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(file) = ChainFile::parse(text) {
        check(&file);
    }
});
