//! Collectors: procfs (CPU, context switches) sampled per component,
//! `/proc/interrupts` and `/proc/softirqs` snapshots, and eBPF tracepoint
//! counters per process.

pub mod ebpf;
pub mod interrupts;
pub mod procfs;
pub mod sampler;
