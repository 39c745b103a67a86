//! EPROXY: tc counters on the gateway's interface.

use aya::maps::{Array, MapData, PerCpuArray};
use aya::programs::{SchedClassifier, TcAttachType};
use aya::Ebpf;

use super::{sum, BpfError, EPROXY_OBJECT};

/// Packets and bytes of the gateway's port seen at its interface.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EproxyCounters {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
}

/// The attached EPROXY. TCX links (kernel >= 6.6) detach when dropped.
pub struct Eproxy {
    counters: PerCpuArray<MapData, u64>,
    interface: String,
    _config: Array<MapData, u32>,
    _ebpf: Ebpf,
}

impl Eproxy {
    /// Attaches to `interface` (ingress and egress), counting TCP `port`.
    pub fn attach(interface: &str, port: u16) -> Result<Self, BpfError> {
        let mut ebpf = Ebpf::load(EPROXY_OBJECT).map_err(|e| BpfError::from_display("load EPROXY object", e))?;
        let mut config: Array<MapData, u32> = ebpf
            .take_map("eproxy_config")
            .ok_or(BpfError::Kernel { what: "EPROXY map", detail: "eproxy_config missing".into() })?
            .try_into()
            .map_err(|e| BpfError::from_display("eproxy_config map", e))?;
        config.set(0, port as u32, 0).map_err(|e| BpfError::from_display("eproxy_config set", e))?;
        let counters = ebpf
            .take_map("eproxy_counters")
            .ok_or(BpfError::Kernel { what: "EPROXY map", detail: "eproxy_counters missing".into() })?
            .try_into()
            .map_err(|e| BpfError::from_display("eproxy_counters map", e))?;
        for (name, hook) in [("eproxy_ingress", TcAttachType::Ingress), ("eproxy_egress", TcAttachType::Egress)] {
            let prog: &mut SchedClassifier = ebpf
                .program_mut(name)
                .ok_or(BpfError::Kernel { what: "EPROXY program", detail: format!("{name} missing") })?
                .try_into()
                .map_err(|e| BpfError::from_display("EPROXY program type", e))?;
            prog.load().map_err(|e| BpfError::from_display("verify EPROXY", e))?;
            prog.attach(interface, hook).map_err(|e| BpfError::from_display("attach EPROXY (tc)", e))?;
        }
        Ok(Self { counters, interface: interface.to_string(), _config: config, _ebpf: ebpf })
    }

    pub fn interface(&self) -> &str {
        &self.interface
    }

    pub fn counters(&self) -> EproxyCounters {
        let get = |i: u32| self.counters.get(&i, 0).map(|v| sum(v.iter(), |x| *x)).unwrap_or(0);
        EproxyCounters { rx_packets: get(0), rx_bytes: get(1), tx_packets: get(2), tx_bytes: get(3) }
    }
}
