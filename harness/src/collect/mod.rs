//! Collectors: procfs (CPU, context switches) sampled per component,
//! software perf counters per process,
//! `/proc/interrupts` and `/proc/softirqs` snapshots, and eBPF tracepoint
//! counters per process.

pub mod ebpf;
pub mod interrupts;
pub mod perf;
pub mod procfs;
pub mod sampler;
