use std::os::fd::{AsFd, AsRawFd};

use super::*;
use crate::descriptor::FunctionId;

fn pool(slots: u32) -> Pool {
    Pool::create(ChainId(1), PoolGeometry { slots, slot_payload: 1024 }).unwrap()
}

#[test]
fn alloc_until_exhausted_then_recovers() {
    let p = pool(8);
    let got: Vec<_> = (0..8).map(|_| p.alloc(Lease::GATEWAY).expect("slot")).collect();
    assert!(p.alloc(Lease::GATEWAY).is_none());
    assert_eq!(p.counters().exhausted, 1);
    assert_eq!(p.occupancy(), 8);
    p.free(got[3]).unwrap();
    let again = p.alloc(Lease::GATEWAY).unwrap();
    assert_eq!(again.index, got[3].index);
    assert_ne!(again.gen, got[3].gen, "a reused slot gets a new generation");
}

#[test]
fn double_free_is_refused() {
    let p = pool(2);
    let s = p.alloc(Lease::GATEWAY).unwrap();
    p.free(s).unwrap();
    assert!(matches!(p.free(s), Err(PoolError::NotAllocated(_))));
    let s2 = p.alloc(Lease::GATEWAY).unwrap();
    // The old handle must not free the new owner's slot.
    if s2.index == s.index {
        assert!(p.free(s).is_err());
    }
    p.free(s2).unwrap();
    assert_eq!(p.occupancy(), 0);
}

#[test]
fn descriptors_are_validated_and_refusals_counted() {
    let p = pool(4);
    let s = p.alloc(Lease::GATEWAY).unwrap();
    let me = Endpoint::new(ChainId(1), FunctionId(1));
    assert_eq!(p.validate(&Descriptor::new(me, s.index, s.gen)), Ok(s));
    assert_eq!(p.validate(&Descriptor::new(me, 99, s.gen)), Err(Rejection::OutOfRange));
    assert_eq!(p.validate(&Descriptor::new(me, s.index, s.gen + 1)), Err(Rejection::Stale));
    let other_chain = Endpoint::new(ChainId(2), FunctionId(1));
    assert_eq!(p.validate(&Descriptor::new(other_chain, s.index, s.gen)), Err(Rejection::WrongChain));
    let mut bad = Descriptor::new(me, s.index, s.gen);
    bad.magic = 0xdead;
    assert_eq!(p.validate(&bad), Err(Rejection::Malformed));
    p.free(s).unwrap();
    assert_eq!(p.validate(&Descriptor::new(me, s.index, s.gen)), Err(Rejection::Stale), "freed slot");
    let c = p.counters();
    assert_eq!((c.rejected_out_of_range, c.rejected_stale, c.rejected_wrong_chain, c.rejected_malformed), (1, 2, 1, 1));
}

#[test]
fn abandoned_slots_stay_out_until_freed() {
    let p = pool(1);
    let s = p.alloc(Lease::GATEWAY).unwrap();
    let f = Endpoint::new(ChainId(1), FunctionId(2));
    p.set_holder(s, f);
    assert!(p.abandon(s));
    assert!(p.alloc(Lease::GATEWAY).is_none());
    // A late descriptor for an abandoned slot still validates, so its
    // return can free it.
    assert_eq!(p.validate(&Descriptor::new(Endpoint::gateway(ChainId(1)), s.index, s.gen)), Ok(s));
    assert_eq!(p.held_by(f), vec![(s, SlotState::Abandoned)]);
    p.free(s).unwrap();
    assert!(p.alloc(Lease::GATEWAY).is_some());
}

#[test]
fn reopened_pool_shares_memory_and_checks_header() {
    let p = pool(4);
    let dup = p.fd().try_clone_to_owned().unwrap();
    let q = Pool::open(dup).unwrap();
    assert_eq!((q.slot_count(), q.slot_payload_size(), q.chain()), (4, p.slot_payload_size(), ChainId(1)));
    let s = p.alloc(Lease::GATEWAY).unwrap();
    unsafe { p.payload(s)[..5].copy_from_slice(b"hello") };
    assert_eq!(unsafe { &q.payload(s)[..5] }, b"hello");
    assert_eq!(q.occupancy(), 1);

    let junk = crate::sys::memfd("junk", 8192, false).unwrap();
    assert!(matches!(Pool::open(junk), Err(PoolError::BadHeader(_))));
    let _ = p.fd().as_fd().as_raw_fd();
}

/// Several processes allocate, stamp, verify and free slots concurrently:
/// nobody ever sees a slot it holds stamped by another, and nothing leaks.
#[test]
fn multi_process_churn_never_double_allocates() {
    const PROCS: usize = 4;
    const ROUNDS: u32 = 20_000;
    let p = pool(16);
    let mut pids = Vec::new();
    for k in 0..PROCS {
        // SAFETY: the child only touches the shared mapping and atomics, then
        // _exits; nothing that needs the parent's locks.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let lease = Lease(10 + k as u32);
            let stamp = (k as u64 + 1) << 40;
            let mut code = 0;
            for round in 0..ROUNDS {
                let Some(s) = p.alloc(lease) else { continue };
                let mine = stamp | round as u64;
                let buf = unsafe { p.payload(s) };
                buf[..8].copy_from_slice(&mine.to_ne_bytes());
                for _ in 0..20 {
                    std::hint::spin_loop();
                }
                if buf[..8] != mine.to_ne_bytes() {
                    code = 3;
                    break;
                }
                if p.free(s).is_err() {
                    code = 4;
                    break;
                }
            }
            unsafe { libc::_exit(code) };
        }
        pids.push(pid);
    }
    for pid in pids {
        let mut status = 0;
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(libc::WIFEXITED(status), "child crashed");
        assert_eq!(libc::WEXITSTATUS(status), 0, "child saw a double allocation (3) or bad free (4)");
    }
    assert_eq!(p.occupancy(), 0, "slots leaked");
}

/// A process killed while holding slots: its lease is reclaimed.
#[test]
fn slots_of_a_killed_process_are_reclaimed() {
    let p = pool(8);
    let lease = Lease(77);
    let mut fds = [0; 2];
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        for _ in 0..5 {
            p.alloc(lease);
        }
        unsafe { libc::write(fds[1], b"x".as_ptr().cast(), 1) };
        loop {
            unsafe { libc::pause() };
        }
    }
    let mut b = [0u8; 1];
    unsafe { libc::read(fds[0], b.as_mut_ptr().cast(), 1) };
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
        libc::close(fds[0]);
        libc::close(fds[1]);
    }
    assert_eq!(p.occupancy(), 5);
    assert_eq!(p.reclaim_lease(lease), 5);
    assert_eq!(p.occupancy(), 0);
}
