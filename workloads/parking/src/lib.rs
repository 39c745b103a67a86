//! Parking: detection (1), search (2), index (3), charging (4), persist (5),
//! in two routes, with heterogeneous service times (1 to 435 ms) and
//! periodic bursts of image uploads. [`core`] is shared by every mode.

pub mod core;
pub mod spright;
