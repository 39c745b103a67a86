//! The chain file: a deployment of one or more chains behind one gateway.
//!
//! ```yaml
//! transport: skmsg            # skmsg | ring | eventring (CLI may override)
//! gateway: { max_body_bytes: 65536, request_timeout_ms: 5000 }
//! chains:
//!   - name: example
//!     pool: { slots: 1024, slot_size: 16384, app_bytes: 256 }
//!     functions:
//!       - { id: 1, name: parse, handler: example.parse, threads: 1 }
//!     routes:
//!       - { path: /transform, sequence: [1, 2, 3] }   # static sequence
//!       - { path: /echo, first: 3 }                    # handlers route on
//! ```
//!
//! Each chain is a security domain: its own pool, its own rings, and SPROXY
//! edges only among its functions and the gateway.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::descriptor::{ChainId, FunctionId};
use crate::pool::PoolGeometry;
use crate::service_time::ServiceTime;
use crate::transport::TransportKind;
use crate::txn::{MAX_SEQUENCE, TXN_HEADER_SIZE};

#[derive(Debug, thiserror::Error)]
pub enum ChainFileError {
    #[error("cannot read chain file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("chain file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("chain file {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainFile {
    #[serde(default = "default_transport")]
    pub transport: TransportKind,
    #[serde(default)]
    pub gateway: GatewayLimits,
    pub chains: Vec<ChainSpec>,
    /// Directory of the file, for resolving relative `binary` paths.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

fn default_transport() -> TransportKind {
    TransportKind::Skmsg
}

/// Gateway limits and timeouts (each has a defined HTTP answer).
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayLimits {
    /// Larger bodies get 413.
    pub max_body_bytes: usize,
    /// Larger request heads get 431 (hyper's minimum is 8192).
    pub max_header_bytes: usize,
    /// A chain slower than this gets 504.
    pub request_timeout_ms: u64,
    /// A client slower than this sending its request gets 408.
    pub client_timeout_ms: u64,
    /// How long shutdown waits for in-flight requests.
    pub drain_timeout_ms: u64,
    /// Tokio worker threads of the gateway.
    pub threads: usize,
}

impl GatewayLimits {
    /// The limits of a chain file that sets none (also the baselines' front doors').
    pub const DEFAULT: Self = Self {
        max_body_bytes: 1 << 20,
        max_header_bytes: 16 << 10,
        request_timeout_ms: 10_000,
        client_timeout_ms: 10_000,
        drain_timeout_ms: 10_000,
        threads: 2,
    };
}

impl Default for GatewayLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl GatewayLimits {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
    pub fn client_timeout(&self) -> Duration {
        Duration::from_millis(self.client_timeout_ms)
    }
    pub fn drain_timeout(&self) -> Duration {
        Duration::from_millis(self.drain_timeout_ms)
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainSpec {
    pub name: String,
    #[serde(default)]
    pub pool: PoolSpec,
    pub functions: Vec<FunctionSpec>,
    pub routes: Vec<RouteSpec>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoolSpec {
    pub slots: u32,
    /// Bytes per slot: transaction header, app state, request, response.
    pub slot_size: u32,
    /// Bytes of typed state the chain's functions share per request.
    pub app_bytes: u32,
}

impl Default for PoolSpec {
    fn default() -> Self {
        Self { slots: 1024, slot_size: 16 << 10, app_bytes: 1024 }
    }
}

impl PoolSpec {
    pub fn geometry(&self) -> PoolGeometry {
        PoolGeometry { slots: self.slots, slot_payload: self.slot_size }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionSpec {
    pub id: u16,
    pub name: String,
    /// Handler name, looked up in the function binary's registry.
    pub handler: String,
    #[serde(default = "one")]
    pub threads: usize,
    /// Binary that runs the function (`<binary> function ...`); default:
    /// the running `spright` executable.
    #[serde(default)]
    pub binary: Option<PathBuf>,
    /// false: the control plane does not start it; a process it did not
    /// spawn (a pod, a test) registers as this function instead.
    #[serde(default = "yes")]
    pub spawn: bool,
    /// Emulated service time per request (`{ ms: 435, mode: sleep }`).
    #[serde(default)]
    pub service_time: Option<ServiceTime>,
}

fn one() -> usize {
    1
}

fn yes() -> bool {
    true
}

impl FunctionSpec {
    pub fn function_id(&self) -> FunctionId {
        FunctionId(self.id)
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    /// Path prefix (matches the path itself and anything below it).
    pub path: String,
    /// First function; handlers decide what comes next.
    #[serde(default)]
    pub first: Option<u16>,
    /// A static sequence of functions; the last one's reply goes back.
    #[serde(default)]
    pub sequence: Option<Vec<u16>>,
}

impl RouteSpec {
    /// The functions this route starts with (a one-element sequence for `first`).
    pub fn sequence(&self) -> Vec<FunctionId> {
        match (&self.sequence, self.first) {
            (Some(s), _) => s.iter().map(|&f| FunctionId(f)).collect(),
            (None, Some(f)) => vec![FunctionId(f)],
            (None, None) => Vec::new(),
        }
    }
}

impl ChainFile {
    pub fn load(path: &Path) -> Result<Self, ChainFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ChainFileError::Read { path: path.to_path_buf(), source })?;
        let mut file = Self::parse(&text).map_err(|e| match e {
            ChainFileError::Parse { message, .. } => ChainFileError::Parse { path: path.to_path_buf(), message },
            ChainFileError::Invalid { message, .. } => ChainFileError::Invalid { path: path.to_path_buf(), message },
            other => other,
        })?;
        file.base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(file)
    }

    /// Parses and validates chain-file text.
    pub fn parse(text: &str) -> Result<Self, ChainFileError> {
        let file: ChainFile =
            serde_norway::from_str(text).map_err(|e| ChainFileError::Parse { path: PathBuf::from("<text>"), message: e.to_string() })?;
        file.validate().map_err(|message| ChainFileError::Invalid { path: PathBuf::from("<text>"), message })?;
        Ok(file)
    }

    fn validate(&self) -> Result<(), String> {
        let g = &self.gateway;
        if g.max_header_bytes < 8192 {
            return Err(format!("gateway.max_header_bytes must be at least 8192, got {}", g.max_header_bytes));
        }
        if g.request_timeout_ms == 0 || g.client_timeout_ms == 0 {
            return Err("gateway timeouts must be positive".into());
        }
        if !(1..=64).contains(&g.threads) {
            return Err(format!("gateway.threads must be 1..=64, got {}", g.threads));
        }
        if self.chains.is_empty() {
            return Err("no chains defined".into());
        }
        if self.chains.len() > 4096 {
            return Err("at most 4096 chains".into());
        }
        let mut names = HashSet::new();
        let mut paths = HashSet::new();
        for c in &self.chains {
            let ctx = format!("chain {:?}", c.name);
            if c.name.is_empty() || !c.name.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_') {
                return Err(format!("{ctx}: name must be non-empty [A-Za-z0-9_-]"));
            }
            if !names.insert(&c.name) {
                return Err(format!("{ctx}: defined twice"));
            }
            let p = &c.pool;
            if !(1..=65536).contains(&p.slots) {
                return Err(format!("{ctx}: pool.slots must be 1..=65536, got {}", p.slots));
            }
            if p.slot_size < 1024 || p.slot_size > 64 << 20 {
                return Err(format!("{ctx}: pool.slot_size must be 1 KiB..=64 MiB, got {}", p.slot_size));
            }
            if (p.app_bytes as usize + TXN_HEADER_SIZE) * 2 > p.slot_size as usize {
                return Err(format!("{ctx}: pool.app_bytes {} leaves too little of slot_size {} for requests", p.app_bytes, p.slot_size));
            }
            if c.functions.is_empty() {
                return Err(format!("{ctx}: no functions"));
            }
            let mut ids = BTreeSet::new();
            for f in &c.functions {
                if !(1..=4095).contains(&f.id) {
                    return Err(format!("{ctx}: function {:?} has id {}; ids are 1..=4095 (0 is the gateway)", f.name, f.id));
                }
                if !ids.insert(f.id) {
                    return Err(format!("{ctx}: function id {} used twice", f.id));
                }
                if f.handler.is_empty() {
                    return Err(format!("{ctx}: function {:?} has no handler", f.name));
                }
                if !(1..=1024).contains(&f.threads) {
                    return Err(format!("{ctx}: function {:?} threads must be 1..=1024, got {}", f.name, f.threads));
                }
                if let Some(st) = f.service_time {
                    if !(0.0..=600_000.0).contains(&st.ms) {
                        return Err(format!("{ctx}: function {:?} service_time.ms must be 0..=600000, got {}", f.name, st.ms));
                    }
                }
            }
            if c.routes.is_empty() {
                return Err(format!("{ctx}: no routes"));
            }
            for r in &c.routes {
                let rctx = format!("{ctx}: route {:?}", r.path);
                if !r.path.starts_with('/') {
                    return Err(format!("{rctx}: path must start with '/'"));
                }
                if !paths.insert(r.path.trim_end_matches('/').to_string()) {
                    return Err(format!("{rctx}: path defined twice"));
                }
                let seq = match (&r.first, &r.sequence) {
                    (Some(_), Some(_)) => return Err(format!("{rctx}: give either `first` or `sequence`, not both")),
                    (None, None) => return Err(format!("{rctx}: needs `first` or `sequence`")),
                    _ => r.sequence(),
                };
                if seq.is_empty() || seq.len() > MAX_SEQUENCE {
                    return Err(format!("{rctx}: sequence must have 1..={MAX_SEQUENCE} functions"));
                }
                if let Some(bad) = seq.iter().find(|f| !ids.contains(&f.0)) {
                    return Err(format!("{rctx}: names function {}, which the chain does not define", bad.0));
                }
            }
        }
        Ok(())
    }

    /// Chains with their ids (1-based, in file order).
    pub fn chains(&self) -> impl Iterator<Item = (ChainId, &ChainSpec)> {
        self.chains.iter().enumerate().map(|(i, c)| (ChainId(i as u16 + 1), c))
    }

    pub fn chain_by_name(&self, name: &str) -> Option<(ChainId, &ChainSpec)> {
        self.chains().find(|(_, c)| c.name == name)
    }

    /// Binary that runs `f` (relative paths are from the chain file).
    pub fn binary_for(&self, f: &FunctionSpec) -> Option<PathBuf> {
        f.binary.as_ref().map(|b| if b.is_absolute() { b.clone() } else { self.base_dir.join(b) })
    }
}

impl ChainSpec {
    pub fn function(&self, id: FunctionId) -> Option<&FunctionSpec> {
        self.functions.iter().find(|f| f.id == id.0)
    }

    /// Rings needed: one per function id up to the largest, plus the gateway.
    pub fn ring_count(&self) -> u32 {
        self.functions.iter().map(|f| f.id as u32).max().unwrap_or(0) + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
chains:
  - name: a
    functions:
      - { id: 1, name: one, handler: h.one }
      - { id: 2, name: two, handler: h.two, threads: 2 }
    routes:
      - { path: /x, sequence: [1, 2] }
      - { path: /y, first: 2 }
"#;

    #[test]
    fn parses_with_defaults() {
        let f = ChainFile::parse(GOOD).unwrap();
        assert_eq!(f.transport, TransportKind::Skmsg);
        assert_eq!(f.chains[0].pool.slots, 1024);
        assert_eq!(f.chains[0].routes[0].sequence(), vec![FunctionId(1), FunctionId(2)]);
        assert_eq!(f.chains[0].ring_count(), 3);
        assert_eq!(f.chains().next().unwrap().0, ChainId(1));
    }

    fn err(text: &str) -> String {
        ChainFile::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn errors_say_what_is_wrong_and_where() {
        assert!(err(&GOOD.replace("[1, 2]", "[1, 9]")).contains("route \"/x\": names function 9, which the chain does not define"));
        assert!(err(&GOOD.replace("id: 2,", "id: 1,")).contains("function id 1 used twice"));
        assert!(err(&GOOD.replace("id: 2,", "id: 0,")).contains("0 is the gateway"));
        assert!(err(&GOOD.replace("first: 2", "first: 2, sequence: [1]")).contains("either `first` or `sequence`"));
        assert!(err(&GOOD.replace("path: /y", "path: /x")).contains("path defined twice"));
        assert!(err(&GOOD.replace("path: /y", "path: y")).contains("must start with '/'"));
        assert!(err(&format!("transport: carrier-pigeon\n{GOOD}")).contains("unknown variant"));
        assert!(err(&GOOD.replace("threads: 2", "thread: 2")).contains("unknown field"));
        assert!(err("chains: []").contains("no chains"));
        assert!(err(&format!("gateway: {{ max_header_bytes: 100 }}\n{GOOD}")).contains("at least 8192"));
        assert!(err(&GOOD.replace("    functions:", "    pool: { slots: 0 }\n    functions:")).contains("pool.slots"));
    }

    #[test]
    fn missing_file_is_a_clear_error() {
        let e = ChainFile::load(Path::new("/nonexistent/chain.yaml")).unwrap_err().to_string();
        assert!(e.starts_with("cannot read chain file /nonexistent/chain.yaml"), "{e}");
    }
}
