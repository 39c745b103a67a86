//! The CPU and context-switch sampler: every interval it reads procfs for
//! each component of the deployment (and for the harness itself, the load
//! generator) and records what each used during that interval.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::procfs::{context_switches, cpu_seconds, ContextSwitches};

/// A process to watch and the group its numbers add up in.
#[derive(Clone, Debug)]
pub struct Watched {
    pub component: String,
    pub group: String,
    pub pid: u32,
    /// Also watch processes it starts later (the Knative activator's
    /// cold-started containers and queue-proxies).
    pub adopt_children: bool,
}

fn cmdline(pid: u32) -> Vec<String> {
    std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default().split('\0').map(String::from).collect()
}

fn group_of_args(args: &[String]) -> &'static str {
    if args.iter().any(|a| a == "queue-proxy") {
        "sidecar"
    } else {
        "function"
    }
}

/// The group of a process the Knative activator started (a queue-proxy or
/// a user container), by its command line.
pub fn adopted_group(pid: u32) -> &'static str {
    group_of_args(&cmdline(pid))
}

/// A child started by an adopting component: its name and group from its
/// command line.
fn adopted(pid: u32) -> Watched {
    let args = cmdline(pid);
    let group = group_of_args(&args);
    let component = match group {
        "sidecar" => format!("queue-proxy-{pid}"),
        _ => args.iter().skip_while(|a| *a != "--function").nth(1).cloned().unwrap_or_else(|| format!("pid{pid}")),
    };
    Watched { component, group: group.into(), pid, adopt_children: false }
}

/// What one process used in one interval.
#[derive(Clone, Debug, PartialEq)]
pub struct CpuRow {
    /// End of the interval, seconds since the run started.
    pub time_s: f64,
    pub component: String,
    pub group: String,
    pub interval_s: f64,
    pub cpu_s: f64,
    pub voluntary: u64,
    pub involuntary: u64,
}

impl CpuRow {
    pub fn cores(&self) -> f64 {
        if self.interval_s > 0.0 {
            self.cpu_s / self.interval_s
        } else {
            0.0
        }
    }
}

pub struct Sampler {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Vec<CpuRow>>,
}

fn read(pid: u32) -> Option<(f64, ContextSwitches)> {
    Some((cpu_seconds(pid)?, context_switches(pid)?))
}

impl Sampler {
    pub fn start(watched: Vec<Watched>, every: Duration, epoch: Instant) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut watched = watched;
            let mut last: Vec<Option<(f64, ContextSwitches)>> = watched.iter().map(|w| read(w.pid)).collect();
            let mut last_t = Instant::now();
            let mut rows = Vec::new();
            let mut next = last_t + every;
            loop {
                let stopping = flag.load(Ordering::Relaxed);
                if !stopping {
                    // Sleep in short steps so that stop() is prompt.
                    let now = Instant::now();
                    if now < next {
                        std::thread::sleep((next - now).min(Duration::from_millis(50)));
                        continue;
                    }
                }
                // Newly started children count from zero: all their CPU is new.
                let adopters: Vec<u32> = watched.iter().filter(|w| w.adopt_children).map(|w| w.pid).collect();
                for parent in adopters {
                    for child in super::procfs::children_of(parent) {
                        if !watched.iter().any(|w| w.pid == child) {
                            watched.push(adopted(child));
                            last.push(Some((0.0, ContextSwitches::default())));
                        }
                    }
                }
                let now = Instant::now();
                let interval = now.duration_since(last_t).as_secs_f64();
                for (w, prev) in watched.iter().zip(last.iter_mut()) {
                    let cur = read(w.pid);
                    if let (Some((c0, s0)), Some((c1, s1))) = (*prev, cur) {
                        rows.push(CpuRow {
                            time_s: now.saturating_duration_since(epoch).as_secs_f64(),
                            component: w.component.clone(),
                            group: w.group.clone(),
                            interval_s: interval,
                            cpu_s: (c1 - c0).max(0.0),
                            voluntary: s1.voluntary.saturating_sub(s0.voluntary),
                            involuntary: s1.involuntary.saturating_sub(s0.involuntary),
                        });
                    }
                    if cur.is_some() {
                        *prev = cur;
                    }
                }
                last_t = now;
                next += every;
                if stopping {
                    return rows;
                }
            }
        });
        Self { stop, handle }
    }

    /// Takes a last sample and returns every row.
    pub fn stop(self) -> Vec<CpuRow> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_thread_shows_up_as_about_one_core() {
        let me = std::process::id();
        let epoch = Instant::now();
        let s = Sampler::start(
            vec![Watched { component: "me".into(), group: "load".into(), pid: me, adopt_children: false }],
            Duration::from_millis(100),
            epoch,
        );
        let t = Instant::now();
        let mut x = 0u64;
        while t.elapsed() < Duration::from_millis(600) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let rows = s.stop();
        assert!(rows.len() >= 4, "{rows:?}");
        let cpu: f64 = rows.iter().map(|r| r.cpu_s).sum();
        let span: f64 = rows.iter().map(|r| r.interval_s).sum();
        // Behaviour, not timing: the spinning thread's CPU is most of the span.
        assert!(cpu > span * 0.5, "cpu {cpu} over {span}");
        assert!(rows.windows(2).all(|w| w[0].time_s <= w[1].time_s));
    }
}
