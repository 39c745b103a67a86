//! The CPU sampler: every interval, and at every phase boundary
//! ([`Sampler::mark`]), it reads procfs for each process of the run (the
//! registry's members, adopting new descendants first) and `/proc/stat`
//! for each CPU, and records what each used since the previous sample.
//! Because boundaries are samples, every interval lies within one phase.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use testkit::proc::{context_switches, cpu_seconds, cpu_times, ContextSwitches, CpuTimes};

use super::attribution::Registry;

/// What one process used in one interval.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
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

/// What one CPU did in one interval (`/proc/stat`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CpuStatRow {
    pub time_s: f64,
    pub cpu: usize,
    pub interval_s: f64,
    pub t: CpuTimes,
}

#[derive(Default)]
pub struct Samples {
    pub processes: Vec<CpuRow>,
    pub cpus: Vec<CpuStatRow>,
}

enum Command {
    /// Sample now; answer with the sample's time.
    Mark(mpsc::Sender<f64>),
    Stop,
}

pub struct Sampler {
    commands: mpsc::Sender<Command>,
    handle: JoinHandle<Samples>,
}

fn read(pid: u32) -> Option<(f64, ContextSwitches)> {
    Some((cpu_seconds(pid)?, context_switches(pid)?))
}

/// The sampler thread's state between samples.
struct State {
    registry: Registry,
    epoch: Instant,
    last_t: Instant,
    /// Previous reading per pid (a process first seen counts from zero:
    /// all its CPU is new, it was started during the run).
    last: std::collections::BTreeMap<u32, (f64, ContextSwitches)>,
    last_cpus: Vec<CpuTimes>,
    out: Samples,
}

impl State {
    fn sample(&mut self) -> f64 {
        self.registry.adopt_descendants();
        let now = Instant::now();
        let time_s = now.saturating_duration_since(self.epoch).as_secs_f64();
        let interval_s = now.duration_since(self.last_t).as_secs_f64();
        for (pid, member) in self.registry.members() {
            let Some(cur) = read(pid) else { continue };
            let (c0, s0) = self.last.insert(pid, cur).unwrap_or_default();
            self.out.processes.push(CpuRow {
                time_s,
                component: member.component,
                group: member.group,
                interval_s,
                cpu_s: (cur.0 - c0).max(0.0),
                voluntary: cur.1.voluntary.saturating_sub(s0.voluntary),
                involuntary: cur.1.involuntary.saturating_sub(s0.involuntary),
            });
        }
        let cpus = cpu_times();
        for (cpu, (now_t, before)) in cpus.iter().zip(&self.last_cpus).enumerate() {
            self.out.cpus.push(CpuStatRow { time_s, cpu, interval_s, t: now_t.since(before) });
        }
        self.last_cpus = cpus;
        self.last_t = now;
        time_s
    }
}

impl Sampler {
    /// Starts sampling the registry's processes every `every` (first
    /// readings now: what happened before does not count).
    pub fn start(registry: Registry, every: Duration, epoch: Instant) -> Self {
        let (commands, rx) = mpsc::channel();
        let handle = std::thread::spawn(move || {
            registry.adopt_descendants();
            let last = registry.members().into_iter().filter_map(|(pid, _)| Some((pid, read(pid)?))).collect();
            let mut st = State { registry, epoch, last_t: Instant::now(), last, last_cpus: cpu_times(), out: Samples::default() };
            let mut next = st.last_t + every;
            loop {
                match rx.recv_timeout(next.saturating_duration_since(Instant::now())) {
                    Err(RecvTimeoutError::Timeout) => {
                        st.sample();
                        next += every;
                        // Never try to catch up on missed ticks.
                        next = next.max(Instant::now());
                    }
                    Ok(Command::Mark(reply)) => {
                        let _ = reply.send(st.sample());
                        next = Instant::now() + every;
                    }
                    Ok(Command::Stop) | Err(RecvTimeoutError::Disconnected) => {
                        st.sample();
                        return st.out;
                    }
                }
            }
        });
        Self { commands, handle }
    }

    /// Samples now and returns the sample's time (seconds since the epoch):
    /// a phase boundary.
    pub fn mark(&self) -> f64 {
        let (tx, rx) = mpsc::channel();
        if self.commands.send(Command::Mark(tx)).is_err() {
            return f64::NAN;
        }
        rx.recv().unwrap_or(f64::NAN)
    }

    /// Takes a last sample and returns every row.
    pub fn stop(self) -> Samples {
        let _ = self.commands.send(Command::Stop);
        self.handle.join().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_thread_shows_up_as_about_one_core_and_marks_split_the_intervals() {
        let me = std::process::id();
        let epoch = Instant::now();
        let s = Sampler::start(Registry::new([], me), Duration::from_millis(100), epoch);
        let t = Instant::now();
        let mut x = 0u64;
        while t.elapsed() < Duration::from_millis(600) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let mark = s.mark();
        std::thread::sleep(Duration::from_millis(150));
        let rows = s.stop();
        let mine: Vec<&CpuRow> = rows.processes.iter().filter(|r| r.group == "load").collect();
        assert!(mine.len() >= 4, "{mine:?}");
        let before: Vec<&&CpuRow> = mine.iter().filter(|r| r.time_s <= mark).collect();
        let cpu: f64 = before.iter().map(|r| r.cpu_s).sum();
        let span: f64 = before.iter().map(|r| r.interval_s).sum();
        // Behaviour, not timing: the spinning thread's CPU is most of the span.
        assert!(cpu > span * 0.5, "cpu {cpu} over {span}");
        assert!(mine.iter().any(|r| r.time_s == mark), "the mark is a sample");
        assert!(mine.windows(2).all(|w| w[0].time_s <= w[1].time_s));
        // Every CPU is sampled at the same instants.
        let at_mark = rows.cpus.iter().filter(|r| r.time_s == mark).count();
        assert_eq!(at_mark, cpu_times().len());
        let busy: f64 = rows.cpus.iter().filter(|r| r.time_s <= mark).map(|r| r.t.busy()).sum();
        assert!(busy >= cpu * 0.5, "the machine was at least as busy as this process: {busy} vs {cpu}");
    }
}
