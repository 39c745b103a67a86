//! Motion detection on SPRIGHT: the sensor classifies the event into the
//! slot's state, the actuator decides and answers.

use ::spright::sdk::{Action, Registry};
use ::spright::txn::Txn;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::core::{detect, parse_event, Actuator};

#[derive(FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct MotionState {
    pub timestamp: u64,
    pub sensor_id: [u8; 32],
    pub motion: u8,
    pub _pad: [u8; 7],
}

fn sensor(txn: &mut Txn<'_>) -> Action {
    let r = txn.request();
    let ev = match parse_event(r.content_type, r.body) {
        Ok(ev) => ev,
        Err(e) => {
            txn.set_error(400, &e.0);
            return Action::Reply;
        }
    };
    let Some(st) = txn.state_or_error::<MotionState>("motion") else { return Action::Reply };
    st.timestamp = ev.timestamp;
    st.sensor_id = [0; 32];
    st.sensor_id[..ev.sensor_id.len()].copy_from_slice(ev.sensor_id.as_bytes());
    st.motion = detect(&ev) as u8;
    Action::Next
}

/// The handlers (`motion.sensor`, `motion.actuator`).
pub fn registry() -> Registry {
    let actuator = Actuator::default();
    let mut r = Registry::new();
    r.register("motion.sensor", sensor).register("motion.actuator", move |txn: &mut Txn<'_>| {
        let Some(st) = txn.state_or_error::<MotionState>("motion") else { return Action::Reply };
        let end = st.sensor_id.iter().position(|&b| b == 0).unwrap_or(32);
        let id = String::from_utf8_lossy(&st.sensor_id[..end]).into_owned();
        let d = actuator.decide(&id, st.timestamp, st.motion != 0);
        let body = ::spright::wire::json::to_vec(&d).expect("serializable");
        if let Err(e) = txn.set_response(200, "application/json", "", &body) {
            txn.set_error(500, &format!("response does not fit: {e}"));
        }
        Action::Reply
    });
    r
}
