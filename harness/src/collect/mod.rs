//! Collectors: procfs (CPU and context switches per process, `/proc/stat`
//! per CPU) sampled through the run, software perf counters per process,
//! `/proc/interrupts` and `/proc/softirqs` per CPU, eBPF tracepoint
//! counters per process, and the attribution of processes to components;
//! for a soak, memory, descriptors, BPF map entries and pool slots in use
//! per process.

pub mod attribution;
pub mod ebpf;
pub mod interrupts;
pub mod perf;
pub mod resources;
pub mod sampler;
#[cfg(test)]
mod transfers_test;
