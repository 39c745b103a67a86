//! The gateway's front door: one client connection's bytes into the real
//! server loop ([`spright::http1::serve_connection`]) with the real
//! gateway ([`Gateway::handle`]) of the example chain
//! (`system/examples/chain.yaml`, its limits and routes), whose functions
//! are the real example handlers, run in process by [`InProcess`].
//!
//! Input: a control byte (see `spright_fuzz::Plan`), then the bytes the
//! client sends. Invariants, per connection:
//! * nothing panics and the connection ends (no hang);
//! * everything written back is well-formed HTTP/1.1
//!   (`spright_fuzz::check_responses`) with a status from the gateway's
//!   documented answers;
//! * no slot leaks: the pool is empty once the connection has ended.

#![no_main]

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, OnceLock, Weak};

use libfuzzer_sys::fuzz_target;
use spright::control::chain::{ChainFile, GatewayLimits};
use spright::descriptor::{ChainId, Descriptor, Endpoint, FunctionId};
use spright::gateway::{Gateway, GatewayChain, GatewayRoute};
use spright::http1::{self, ConnectionEnd};
use spright::pool::{Lease, Pool};
use spright::sdk::{Action, Handler};
use spright::transport::{DescriptorRx, DescriptorTx, TransportError};
use spright::txn::Txn;
use spright_fuzz::{check_connection, drive, runtime, show, Plan};
use tokio::runtime::Runtime;

const CHAIN_FILE: &str = include_str!("../../system/examples/chain.yaml");

/// The lease the in-process functions take slots under (the gateway's is 1).
const FUNCTIONS: Lease = Lease(2);

/// What the gateway may answer (see `system/src/gateway/http.rs`):
/// 100 Continue, the example chain's 200/400/507, hyper's 400/414/431,
/// 404 no route, 408 body too slow (lingering client), 413 too large,
/// 502 for `/delay`, whose function is not running here.
const ANSWERS: [u16; 10] = [100, 200, 400, 404, 408, 413, 414, 431, 502, 507];

/// The chain's functions, run in process, one after another, on the
/// thread that sends the gateway's descriptor - what each function's
/// runtime (`spright::sdk`) does with a descriptor, without processes or
/// rings. `example.delay` (function 4) sleeps, so it is not run: the
/// transport refuses descriptors to it, as for a function that is gone.
struct InProcess {
    chain: ChainId,
    pool: Arc<Pool>,
    handlers: HashMap<u16, Arc<dyn Handler>>,
    gateway: OnceLock<Weak<Gateway>>,
}

impl InProcess {
    /// Runs function `d.destination()` on its slot; where the slot goes next.
    fn run(&self, d: &Descriptor, handler: &dyn Handler) -> Descriptor {
        let slot = self.pool.take(d, FUNCTIONS).unwrap_or_else(|r| panic!("{d:?} refused: {r}"));
        let next = {
            let mut txn = Txn::open(self.pool.payload(slot)).expect("the gateway wrote a transaction");
            let next = match handler.handle(&mut txn) {
                Action::Reply => FunctionId::GATEWAY,
                Action::Next => txn.advance().unwrap_or(FunctionId::GATEWAY),
                Action::Call(f) if self.handlers.contains_key(&f.0) => f,
                Action::Call(f) => {
                    txn.set_error(500, &format!("called function {f}, which is not running"));
                    FunctionId::GATEWAY
                }
            };
            if next == FunctionId::GATEWAY && txn.header().status == 0 {
                txn.set_error(500, "replied without a response");
            }
            next
        };
        assert!(self.pool.hand_over(slot, FUNCTIONS, next), "nobody recalls slots here");
        Descriptor::new(Endpoint::new(self.chain, next), slot.index, slot.gen)
    }
}

impl DescriptorTx for InProcess {
    fn send(&self, d: &Descriptor) -> Result<(), TransportError> {
        let mut d = *d;
        while d.destination().function != FunctionId::GATEWAY {
            let Some(handler) = self.handlers.get(&d.destination().function.0) else {
                return Err(TransportError::NoSuchDestination(d.dst));
            };
            d = self.run(&d, handler.as_ref());
        }
        // Back at the gateway: its completion loop takes this one descriptor.
        let gateway = self.gateway.get().and_then(Weak::upgrade).expect("the gateway is alive");
        gateway.run_completions(self.chain, Box::new(Returned(Some(d))));
        Ok(())
    }
}

/// A receiver that yields one descriptor, then reports the link closed.
struct Returned(Option<Descriptor>);

impl DescriptorRx for Returned {
    fn recv(&mut self, out: &mut Vec<Descriptor>) -> Result<(), TransportError> {
        out.extend(self.0.take());
        if out.is_empty() {
            Err(TransportError::Closed)
        } else {
            Ok(())
        }
    }
}

struct World {
    rt: Runtime,
    gateway: Arc<Gateway>,
    pool: Arc<Pool>,
    limits: GatewayLimits,
}

static WORLD: LazyLock<World> = LazyLock::new(|| {
    let file = ChainFile::parse(CHAIN_FILE).expect("the example chain file parses");
    let (id, spec) = file.chains().next().expect("one chain");
    let pool = Arc::new(Pool::create(id, spec.pool.geometry()).expect("a pool"));
    let registry = spright::examples::registry();
    let handlers = spec
        .functions
        .iter()
        .filter(|f| f.handler != "example.delay")
        .map(|f| (f.id, registry.get(&f.handler).expect("an example handler")))
        .collect();
    let functions = Arc::new(InProcess { chain: id, pool: pool.clone(), handlers, gateway: OnceLock::new() });
    let chain = GatewayChain::new(id, &spec.name, pool.clone(), functions.clone(), spec.pool.app_bytes as usize);
    let routes = spec
        .routes
        .iter()
        .enumerate()
        .map(|(r, route)| GatewayRoute { prefix: route.path.clone(), chain: 0, route: r as u16, sequence: route.sequence() })
        .collect();
    let gateway = Arc::new(Gateway::new(file.gateway, vec![chain], routes));
    functions.gateway.set(Arc::downgrade(&gateway)).expect("set once");
    World { rt: runtime(), gateway, pool, limits: file.gateway }
});

fuzz_target!(|data: &[u8]| {
    let Some((plan, input)) = Plan::split(data) else { return };
    let w = &*WORLD;
    let gateway = w.gateway.clone();
    let handler = move |req| {
        let gw = gateway.clone();
        async move { gw.handle(req).await }
    };
    let (end, out) =
        w.rt.block_on(drive(plan, input, w.limits.client_timeout(), |io, stop| http1::serve_connection(io, &w.limits, stop, handler)));
    check_connection(input, &out, &ANSWERS);
    assert!(plan.linger || end == ConnectionEnd::Closed, "a head timeout without waiting for one\n{}", show(input, &out));
    assert_eq!(w.pool.occupancy(), 0, "slots leaked\n{}", show(input, &out));
});
