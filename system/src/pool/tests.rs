use std::os::fd::{AsFd, AsRawFd};

use super::*;
use crate::descriptor::{Endpoint, FunctionId};

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
fn descriptors_are_checked_and_refusals_counted() {
    let p = pool(4);
    let s = p.alloc(Lease::GATEWAY).unwrap();
    let me = Endpoint::new(ChainId(1), FunctionId(1));
    let f1 = Lease(5);
    assert_eq!(p.take(&Descriptor::new(me, s.index, s.gen), f1), Err(Rejection::NotAddressed), "not handed over yet");
    assert!(p.hand_over(s, Lease::GATEWAY, FunctionId(1)));
    assert_eq!(p.take(&Descriptor::new(me, 99, s.gen), f1), Err(Rejection::OutOfRange));
    assert_eq!(p.take(&Descriptor::new(me, s.index, s.gen + 1), f1), Err(Rejection::Stale));
    let other_chain = Endpoint::new(ChainId(2), FunctionId(1));
    assert_eq!(p.take(&Descriptor::new(other_chain, s.index, s.gen), f1), Err(Rejection::WrongChain));
    let mut bad = Descriptor::new(me, s.index, s.gen);
    bad.magic = 0xdead;
    assert_eq!(p.take(&bad, f1), Err(Rejection::Malformed));
    let other_fn = Endpoint::new(ChainId(1), FunctionId(2));
    assert_eq!(p.take(&Descriptor::new(other_fn, s.index, s.gen), Lease(6)), Err(Rejection::NotAddressed), "sent to someone else");
    assert_eq!(p.take(&Descriptor::new(me, s.index, s.gen), f1), Ok(s));
    assert_eq!(p.holder(s.index), Holder::Taken(f1));
    assert_eq!(p.take(&Descriptor::new(me, s.index, s.gen), f1), Err(Rejection::NotAddressed), "a replay is refused");
    assert!(!p.hand_over(s, Lease::GATEWAY, FunctionId(0)), "only the holder hands over");
    assert!(p.hand_over(s, f1, FunctionId(0)));
    p.free(s).unwrap();
    assert_eq!(p.take(&Descriptor::new(me, s.index, s.gen), f1), Err(Rejection::Stale), "freed slot");
    let c = p.counters();
    assert_eq!(
        (c.rejected_out_of_range, c.rejected_stale, c.rejected_wrong_chain, c.rejected_malformed, c.rejected_not_addressed),
        (1, 2, 1, 1, 3)
    );
}

#[test]
fn abandoned_slots_stay_out_until_freed() {
    let p = pool(1);
    let s = p.alloc(Lease::GATEWAY).unwrap();
    assert!(p.hand_over(s, Lease::GATEWAY, FunctionId(2)));
    assert!(p.abandon(s));
    assert!(p.alloc(Lease::GATEWAY).is_none());
    // A late return of an abandoned slot is still taken, so it can be freed.
    let f2 = Lease(7);
    assert_eq!(p.take(&Descriptor::new(Endpoint::new(ChainId(1), FunctionId(2)), s.index, s.gen), f2), Ok(s));
    assert!(p.hand_over(s, f2, FunctionId::GATEWAY));
    assert_eq!(p.take(&Descriptor::new(Endpoint::gateway(ChainId(1)), s.index, s.gen), Lease::GATEWAY), Ok(s));
    assert_eq!(p.state(s.index).0, SlotState::Abandoned);
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
    assert!(p.payload(s).write(0, b"hello"));
    assert_eq!(q.payload(s).read_vec(0, 5).unwrap(), b"hello");
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
                let buf = p.payload(s);
                buf.write_obj(0, &mine);
                for _ in 0..20 {
                    std::hint::spin_loop();
                }
                if buf.read_obj::<u64>(0) != Some(mine) {
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

/// A process killed while holding slots: what its lease took is recalled.
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
    let recalled = p.recall(Holder::Taken(lease));
    assert_eq!(recalled.len(), 5);
    for (slot, state) in recalled {
        assert_eq!((state, p.holder(slot.index)), (SlotState::InUse, Holder::Taken(Lease::GATEWAY)));
        p.free(slot).unwrap();
    }
    assert_eq!(p.occupancy(), 0);
}

/// A function's send fails just as the control plane recalls the slot from
/// the peer it was sent to (the peer died): whoever's CAS wins owns it, and
/// the loser never writes it. Rounds alternate a forced order (recall
/// first, take-back first) with a free race; in every round the slot is
/// reallocated after a recall and its new owner's bytes must stay intact.
#[test]
fn a_sender_racing_a_recall_never_writes_a_slot_it_lost() {
    use std::sync::atomic::AtomicU64;
    use std::sync::{Arc, Barrier};
    const ROUNDS: u64 = 30_000;
    const SENDER: Lease = Lease(5);
    const F: FunctionId = FunctionId(3);
    const DEAD_PEER: FunctionId = FunctionId(7);
    const SENDER_MARK: u64 = u64::MAX;
    let p = Arc::new(pool(1));
    let slot_word = Arc::new(AtomicU64::new(0));
    // Meeting points per round: slot ready, handed over, the forced order's
    // step (two rounds in three), done.
    let meet = Arc::new(Barrier::new(2));
    let sender = {
        let (p, slot_word, meet) = (p.clone(), slot_word.clone(), meet.clone());
        std::thread::spawn(move || {
            let mut won = 0u64;
            for round in 0..ROUNDS {
                meet.wait();
                let w = slot_word.load(Ordering::Acquire);
                let s = SlotRef { index: (w >> 32) as u32, gen: w as u32 };
                assert!(p.hand_over(s, SENDER, DEAD_PEER));
                meet.wait(); // handed over
                if round % 3 == 0 {
                    meet.wait(); // after the recall
                }
                // The send failed: take the slot back unless it was recalled.
                if p.take_back(s, DEAD_PEER, SENDER) {
                    assert!(p.payload(s).write_obj(0, &SENDER_MARK));
                    assert!(p.hand_over(s, SENDER, FunctionId::GATEWAY));
                    won += 1;
                }
                if round % 3 == 1 {
                    meet.wait(); // before the recall
                }
                meet.wait();
            }
            won
        })
    };
    let mut recalled_rounds = 0u64;
    for round in 0..ROUNDS {
        let s = p.alloc(Lease::GATEWAY).expect("the one slot is free");
        assert!(p.hand_over(s, Lease::GATEWAY, F));
        assert_eq!(p.take(&Descriptor::new(Endpoint::new(ChainId(1), F), s.index, s.gen), SENDER), Ok(s));
        slot_word.store((s.index as u64) << 32 | s.gen as u64, Ordering::Release);
        meet.wait();
        meet.wait(); // handed over
        if round % 3 == 1 {
            meet.wait(); // after the take-back
        }
        let recalled = p.recall(Holder::Sent(DEAD_PEER));
        if round % 3 == 0 {
            meet.wait(); // before the take-back
        }
        let mut next_owner = None;
        if let [(r, SlotState::InUse)] = recalled[..] {
            assert_eq!(r, s);
            p.free(s).unwrap();
            // The slot goes straight to a new request, which writes it.
            let s2 = p.alloc(Lease::GATEWAY).expect("recalled slot is free again");
            assert!(p.payload(s2).write_obj(0, &round));
            next_owner = Some(s2);
            recalled_rounds += 1;
        } else {
            assert!(recalled.is_empty());
        }
        meet.wait();
        match next_owner {
            Some(s2) => {
                assert_eq!(p.payload(s2).read_obj::<u64>(0), Some(round), "round {round}: the losing sender wrote a reallocated slot");
                p.free(s2).unwrap();
            }
            None => {
                assert_eq!(p.holder(s.index), Holder::Sent(FunctionId::GATEWAY));
                assert_eq!(p.payload(s).read_obj::<u64>(0), Some(SENDER_MARK));
                p.free(s).unwrap();
            }
        }
    }
    let won = sender.join().unwrap();
    assert_eq!(won + recalled_rounds, ROUNDS, "every round has exactly one owner");
    assert!(won >= ROUNDS / 3 && recalled_rounds >= ROUNDS / 3, "both forced orders happened (won {won}, recalled {recalled_rounds})");
    assert_eq!(p.occupancy(), 0);
}
