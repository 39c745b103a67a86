//! Collectors: procfs (CPU and context switches per process, `/proc/stat`
//! per CPU) sampled through the run, software perf counters per process,
//! `/proc/interrupts` and `/proc/softirqs` per CPU, eBPF tracepoint
//! counters per process, and the attribution of processes to components.

pub mod attribution;
pub mod ebpf;
pub mod interrupts;
pub mod perf;
pub mod sampler;
#[cfg(test)]
mod transfers_test;
