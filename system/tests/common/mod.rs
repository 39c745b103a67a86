//! The runtime's tests run the `spright` binary through `testkit`.
#![allow(dead_code, unused_imports)]

use std::path::{Path, PathBuf};

pub use testkit::{example_chain, process_tree, tree_cpu_seconds, Http, HttpResponse, TempChain, TRANSPORTS};

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_spright"))
}

/// `spright run` with this crate's binary.
pub struct Spright;

impl Spright {
    pub fn start(chain: &Path, transport: &str) -> testkit::Spright {
        testkit::Spright::start(&bin(), chain, transport)
    }

    pub fn start_yaml(yaml: &str, transport: &str) -> testkit::Spright {
        testkit::Spright::start_yaml(&bin(), yaml, transport)
    }
}
