//! Parking on SPRIGHT: the image stays where the gateway wrote it (the
//! slot's request body); detection records where it is and the plate, the
//! others read and extend the typed state in place.

use std::sync::Arc;

use ::spright::sdk::{Action, Registry};
use ::spright::txn::Txn;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::core::{fee_cents, fee_text, find_image, plate, Receipt, Route, SeenPlates, SessionStore, SpotIndex};

#[derive(FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct ParkingState {
    /// The image's place in the request body.
    pub image_offset: u32,
    pub image_len: u32,
    pub plate: [u8; 16],
    pub spot: u32,
    pub records: u32,
    pub seen_before: u8,
    /// 1 = new vehicle (route 1), 2 = known vehicle (route 2).
    pub route: u8,
    pub _pad: [u8; 6],
}

fn with_state(txn: &mut Txn<'_>, f: impl FnOnce(&mut ParkingState) -> Action) -> Action {
    match txn.state_or_error::<ParkingState>("parking") {
        Some(st) => f(st),
        None => Action::Reply,
    }
}

fn plate_of(st: &ParkingState) -> String {
    let end = st.plate.iter().position(|&b| b == 0).unwrap_or(st.plate.len());
    String::from_utf8_lossy(&st.plate[..end]).into_owned()
}

fn route_of(st: &ParkingState) -> Route {
    if st.route == 1 {
        Route::New
    } else {
        Route::Known
    }
}

fn detection(txn: &mut Txn<'_>) -> Action {
    let r = txn.request();
    let route = if r.path.trim_end_matches('/').ends_with("/new") { 1 } else { 2 };
    let found = find_image(r.content_type, r.body).map(|range| {
        let p = plate(&r.body[range.clone()]);
        (range, p)
    });
    let (range, p) = match found {
        Ok(ok) => ok,
        Err(e) => {
            txn.set_error(e.status, &e.message);
            return Action::Reply;
        }
    };
    with_state(txn, |st| {
        st.image_offset = range.start as u32;
        st.image_len = range.len() as u32;
        st.plate = [0; 16];
        st.plate[..p.len()].copy_from_slice(p.as_bytes());
        st.route = route;
        Action::Next
    })
}

/// The handlers: `parking.detection`, `.search`, `.index`, `.persist`, `.charging`.
pub fn registry() -> Registry {
    let seen = Arc::new(SeenPlates::default());
    let index = Arc::new(SpotIndex::default());
    let store = Arc::new(SessionStore::default());
    let mut r = Registry::new();
    r.register("parking.detection", detection)
        .register("parking.search", move |txn: &mut Txn<'_>| {
            with_state(txn, |st| {
                st.seen_before = seen.check_and_insert(&plate_of(st)) as u8;
                Action::Next
            })
        })
        .register("parking.index", move |txn: &mut Txn<'_>| {
            with_state(txn, |st| {
                st.spot = index.assign(&plate_of(st));
                Action::Next
            })
        })
        .register("parking.persist", move |txn: &mut Txn<'_>| {
            with_state(txn, |st| {
                st.records = store.append(&plate_of(st), st.spot);
                Action::Next
            })
        })
        .register("parking.charging", |txn: &mut Txn<'_>| {
            let Some(st) = txn.state_or_error::<ParkingState>("parking") else { return Action::Reply };
            let receipt = {
                let route = route_of(st);
                let p = plate_of(st);
                Receipt {
                    fee_usd: fee_text(fee_cents(route, &p)),
                    plate: p,
                    route,
                    seen_before: st.seen_before != 0,
                    spot: (route == Route::New).then_some(st.spot),
                    records: (route == Route::New).then_some(st.records),
                    image_bytes: st.image_len as usize,
                }
            };
            let body = ::spright::wire::json::to_vec(&receipt).expect("serializable");
            if let Err(e) = txn.set_response(200, "application/json", "", &body) {
                txn.set_error(500, &format!("response does not fit: {e}"));
            }
            Action::Reply
        });
    r
}
