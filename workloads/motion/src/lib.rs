//! Motion detection: sensor (1) -> actuator (2), the paper's intermittent,
//! bursty IoT workload. [`core`] is shared by every mode; [`spright`] runs
//! it as a SPRIGHT chain.

pub mod core;
pub mod spright;
