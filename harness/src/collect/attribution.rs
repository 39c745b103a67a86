//! Which component of the system under test a process belongs to.
//!
//! A deployment names its processes when it comes up; processes it starts
//! later (containers the Knative model's activator cold-starts with their
//! queue-proxies, functions the SPRIGHT control plane restarts) are
//! adopted as descendants of a member at every sample and at every phase
//! boundary, and stay members after they exit, so that counters read at
//! the end of a phase still find their group. A process the samples never
//! saw alive is attributed through its ancestry (the eBPF collector
//! records every fork).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

/// A process of the run and where its numbers add up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub component: String,
    /// `gateway`, `sidecar`, `function`, `orchestrator` or `load`.
    pub group: String,
}

/// The group of a process a member started, from its command line: the
/// Knative model's queue-proxies are sidecars, everything else a
/// deployment starts at run time is a function.
fn classify(pid: u32, args: &[String]) -> Member {
    if args.iter().any(|a| a == "queue-proxy") {
        return Member { component: format!("queue-proxy-{pid}"), group: "sidecar".into() };
    }
    let name = args.iter().skip_while(|a| *a != "--function").nth(1);
    Member { component: name.map_or_else(|| format!("pid{pid}"), |n| format!("{n}-{pid}")), group: "function".into() }
}

#[derive(Default)]
struct Inner {
    members: BTreeMap<u32, Member>,
    /// Members whose descendants belong to the system under test (not the
    /// harness: its children are the deployment's named processes).
    adopting: BTreeSet<u32>,
}

/// Shared by the sampler and the counters; cheap to clone.
#[derive(Clone, Default)]
pub struct Registry(Arc<Mutex<Inner>>);

impl Registry {
    /// `components` (pid, name, group) of the system under test, and the
    /// harness process itself (group `load`).
    pub fn new(components: impl IntoIterator<Item = (u32, String, String)>, harness: u32) -> Self {
        let mut inner = Inner::default();
        for (pid, component, group) in components {
            inner.adopting.insert(pid);
            inner.members.insert(pid, Member { component, group });
        }
        inner.members.insert(harness, Member { component: "harness (load generator + collectors)".into(), group: "load".into() });
        Self(Arc::new(Mutex::new(inner)))
    }

    /// Adopts every living descendant of the system under test that is not
    /// a member yet (one scan of /proc); returns how many were new.
    pub fn adopt_descendants(&self) -> usize {
        self.adopt_from(&testkit::proc::parents(), testkit::proc::cmdline)
    }

    fn adopt_from(&self, parents: &[(u32, u32)], cmdline: impl Fn(u32) -> Vec<String>) -> usize {
        let mut inner = self.0.lock().unwrap();
        let mut added = 0;
        // Until nothing changes: a child's child may come before it in the scan.
        loop {
            let new: Vec<u32> = parents
                .iter()
                .filter(|(pid, pp)| inner.adopting.contains(pp) && !inner.members.contains_key(pid))
                .map(|&(p, _)| p)
                .collect();
            if new.is_empty() {
                return added;
            }
            for pid in new {
                inner.members.insert(pid, classify(pid, &cmdline(pid)));
                inner.adopting.insert(pid);
                added += 1;
            }
        }
    }

    /// Every member, with its pid, in pid order.
    pub fn members(&self) -> Vec<(u32, Member)> {
        self.0.lock().unwrap().members.iter().map(|(p, m)| (*p, m.clone())).collect()
    }

    /// The group of `pid`: a member's own, else through its ancestry
    /// (`parents`: child -> parent, from the eBPF collector's fork records
    /// and /proc) the group a descendant of that member gets; `other` for
    /// processes outside the run (the rest of the machine).
    pub fn group_of(&self, pid: u32, parents: &BTreeMap<u32, u32>) -> String {
        let inner = self.0.lock().unwrap();
        if let Some(m) = inner.members.get(&pid) {
            return m.group.clone();
        }
        let mut at = pid;
        for _ in 0..64 {
            match parents.get(&at) {
                Some(&p) if inner.adopting.contains(&p) => return classify(pid, &testkit::proc::cmdline(pid)).group,
                Some(&p) if p != at => at = p,
                _ => break,
            }
        }
        "other".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split(' ').map(String::from).collect()
    }

    #[test]
    fn descendants_are_adopted_with_their_group_and_kept_after_exit() {
        let r = Registry::new([(10, "activator".to_string(), "gateway".to_string()), (20, "ingress".into(), "gateway".into())], 1);
        // 11 and 12: the activator's cold starts; 13: a child of 12; 99: the
        // harness's own child; 50: unrelated.
        let parents = [(11, 10), (13, 12), (12, 10), (99, 1), (50, 7)];
        let cmd = |pid: u32| match pid {
            11 => args("knative-model queue-proxy --listen 127.0.0.1:0"),
            12 | 13 => args("knative-model motion --function sensor --listen 127.0.0.1:0"),
            _ => Vec::new(),
        };
        assert_eq!(r.adopt_from(&parents, cmd), 3);
        assert_eq!(r.adopt_from(&parents, cmd), 0, "adopted once");
        let none = BTreeMap::new();
        assert_eq!(r.group_of(11, &none), "sidecar");
        assert_eq!(r.group_of(12, &none), "function");
        assert_eq!(r.group_of(13, &none), "function");
        assert_eq!(r.group_of(1, &none), "load");
        assert_eq!(r.group_of(99, &none), "other", "the harness's own children are not the system's");
        assert_eq!(r.group_of(50, &none), "other");
        let names: Vec<String> = r.members().into_iter().map(|(_, m)| m.component).collect();
        assert!(names.contains(&"sensor-12".to_string()) && names.contains(&"queue-proxy-11".to_string()), "{names:?}");
    }

    #[test]
    fn a_process_never_seen_alive_is_attributed_by_its_ancestry() {
        let r = Registry::new([(10, "gateway".to_string(), "gateway".to_string())], 1);
        // 30 was forked by 20, itself forked by the gateway; both exited before any sample.
        let forks: BTreeMap<u32, u32> = [(30, 20), (20, 10), (40, 41)].into();
        assert_eq!(r.group_of(30, &forks), "function");
        assert_eq!(r.group_of(40, &forks), "other");
    }
}
