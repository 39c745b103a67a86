//! Starts function processes, restarts them when they die, stops them at
//! teardown. Children get PR_SET_PDEATHSIG, so even a control plane killed
//! with SIGKILL leaves no function behind.

use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::descriptor::Endpoint;

const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// A child that lived this long is considered healthy: backoff resets.
const HEALTHY_AFTER: Duration = Duration::from_secs(5);

/// How to run one function.
#[derive(Clone, Debug)]
pub struct SpawnSpec {
    pub endpoint: Endpoint,
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
}

#[derive(Default, Clone, Copy, Debug)]
pub struct ChildInfo {
    pub pid: Option<u32>,
    pub starts: u64,
}

#[derive(Default)]
struct State {
    stopping: bool,
    children: HashMap<Endpoint, ChildInfo>,
}

#[derive(Default)]
pub struct Supervisor {
    state: Mutex<State>,
    changed: Condvar,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Supervisor {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Runs `spec` now and again after every exit until [`Self::stop_all`].
    pub fn supervise(self: &Arc<Self>, spec: SpawnSpec) {
        self.state.lock().unwrap().children.insert(spec.endpoint, ChildInfo::default());
        let me = self.clone();
        let handle = std::thread::Builder::new()
            .name(format!("supervise-{}", spec.name))
            .spawn(move || me.run(spec))
            .expect("spawn supervisor thread");
        self.threads.lock().unwrap().push(handle);
    }

    fn run(&self, spec: SpawnSpec) {
        let mut backoff = BACKOFF_MIN;
        loop {
            if self.state.lock().unwrap().stopping {
                return;
            }
            let mut cmd = Command::new(&spec.program);
            cmd.args(&spec.args).stdin(Stdio::null());
            // SAFETY: prctl is async-signal-safe.
            unsafe {
                cmd.pre_exec(|| {
                    crate::sys::die_with_parent();
                    Ok(())
                });
            }
            let started = Instant::now();
            let mut child = match cmd.spawn() {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("spright: cannot start function {} ({}): {e}", spec.name, spec.program.display());
                    if !self.pause(BACKOFF_MAX) {
                        return;
                    }
                    continue;
                }
            };
            {
                let mut st = self.state.lock().unwrap();
                let info = st.children.entry(spec.endpoint).or_default();
                info.pid = Some(child.id());
                info.starts += 1;
                self.changed.notify_all();
            }
            let status = child.wait();
            let stopping = {
                let mut st = self.state.lock().unwrap();
                st.children.entry(spec.endpoint).or_default().pid = None;
                self.changed.notify_all();
                st.stopping
            };
            if stopping {
                return;
            }
            if started.elapsed() > HEALTHY_AFTER {
                backoff = BACKOFF_MIN;
            }
            eprintln!(
                "spright: function {} exited ({}); restarting in {} ms",
                spec.name,
                status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string()),
                backoff.as_millis()
            );
            if !self.pause(backoff) {
                return;
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// Sleeps `d` unless stopping; false when stopping.
    fn pause(&self, d: Duration) -> bool {
        let st = self.state.lock().unwrap();
        let (st, _) = self.changed.wait_timeout_while(st, d, |s| !s.stopping).unwrap();
        !st.stopping
    }

    pub fn child(&self, endpoint: Endpoint) -> Option<ChildInfo> {
        self.state.lock().unwrap().children.get(&endpoint).copied()
    }

    /// Waits up to `timeout` for `endpoint`'s child to have pid `pid`.
    pub fn wait_for_pid(&self, endpoint: Endpoint, pid: u32, timeout: Duration) -> bool {
        let st = self.state.lock().unwrap();
        let (st, _) = self.changed.wait_timeout_while(st, timeout, |s| s.children.get(&endpoint).and_then(|c| c.pid) != Some(pid)).unwrap();
        st.children.get(&endpoint).and_then(|c| c.pid) == Some(pid)
    }

    pub fn is_supervised(&self, endpoint: Endpoint) -> bool {
        self.state.lock().unwrap().children.contains_key(&endpoint)
    }

    /// Current pids of every running child.
    pub fn pids(&self) -> Vec<(Endpoint, u32)> {
        self.state.lock().unwrap().children.iter().filter_map(|(e, c)| c.pid.map(|p| (*e, p))).collect()
    }

    /// SIGTERM every child, SIGKILL whoever is left after `grace`, and join.
    pub fn stop_all(&self, grace: Duration) {
        let pids: Vec<u32> = {
            let mut st = self.state.lock().unwrap();
            st.stopping = true;
            self.changed.notify_all();
            st.children.values().filter_map(|c| c.pid).collect()
        };
        for &pid in &pids {
            // SAFETY: kill(2) takes plain integers and touches no memory of ours.
            unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        }
        {
            let st = self.state.lock().unwrap();
            let (_st, timeout) = self.changed.wait_timeout_while(st, grace, |s| s.children.values().any(|c| c.pid.is_some())).unwrap();
            if timeout.timed_out() {
                for c in _st.children.values() {
                    if let Some(pid) = c.pid {
                        // SAFETY: as above, kill(2) on a pid we started.
                        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                    }
                }
            }
        }
        for t in self.threads.lock().unwrap().drain(..) {
            let _ = t.join();
        }
    }
}
