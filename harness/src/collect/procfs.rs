//! Per-process numbers from procfs: CPU time from `/proc/PID/stat`
//! (utime + stime of the whole thread group) and context switches from
//! `/proc/PID/task/*/status` (the kernel keeps them per thread), plus the
//! process tree.

/// The fields of `/proc/PID/stat` the collectors use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    pub ppid: u32,
    /// User and system time in clock ticks.
    pub utime: u64,
    pub stime: u64,
    pub num_threads: u32,
}

/// Parses `/proc/PID/stat`. The command name (field 2) may contain spaces
/// and parentheses, so fields are counted from the last `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let rest: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
    // rest[0] is field 3 (state); field n is rest[n - 3].
    let field = |n: usize| rest.get(n - 3).copied();
    Some(Stat {
        ppid: field(4)?.parse().ok()?,
        utime: field(14)?.parse().ok()?,
        stime: field(15)?.parse().ok()?,
        num_threads: field(20)?.parse().ok()?,
    })
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ContextSwitches {
    pub voluntary: u64,
    pub involuntary: u64,
}

impl std::ops::AddAssign for ContextSwitches {
    fn add_assign(&mut self, o: Self) {
        self.voluntary += o.voluntary;
        self.involuntary += o.involuntary;
    }
}

/// Parses the context-switch lines of a `status` file.
pub fn parse_status_switches(text: &str) -> Option<ContextSwitches> {
    let value = |key: &str| text.lines().find_map(|l| l.strip_prefix(key)?.trim().parse::<u64>().ok());
    Some(ContextSwitches { voluntary: value("voluntary_ctxt_switches:")?, involuntary: value("nonvoluntary_ctxt_switches:")? })
}

pub fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }) as f64
}

pub fn stat(pid: u32) -> Option<Stat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// User + system CPU seconds of a process (all its threads).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    stat(pid).map(|s| (s.utime + s.stime) as f64 / clock_ticks_per_second())
}

/// Context switches of every thread of a process.
pub fn context_switches(pid: u32) -> Option<ContextSwitches> {
    let mut total = ContextSwitches::default();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
        if let Some(c) = std::fs::read_to_string(task.path().join("status")).ok().as_deref().and_then(parse_status_switches) {
            total += c;
        }
    }
    Some(total)
}

/// The direct children of `pid`, from one scan of /proc.
pub fn children_of(pid: u32) -> Vec<u32> {
    let mut out: Vec<u32> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|&p| stat(p).is_some_and(|s| s.ppid == pid))
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "4242 (tokio (rt) worker) S 4200 4242 4200 0 -1 4194560 1500 0 0 0 \
                        731 269 0 0 20 0 3 0 123456 1000000 500 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";

    #[test]
    fn stat_fields_are_counted_after_the_last_parenthesis() {
        assert_eq!(parse_stat(STAT), Some(Stat { ppid: 4200, utime: 731, stime: 269, num_threads: 3 }));
        assert_eq!(parse_stat("12 (x) S"), None);
    }

    #[test]
    fn status_context_switches() {
        let status = "Name:\tspright\nState:\tS (sleeping)\nThreads:\t3\nvoluntary_ctxt_switches:\t1200\nnonvoluntary_ctxt_switches:\t37\n";
        assert_eq!(parse_status_switches(status), Some(ContextSwitches { voluntary: 1200, involuntary: 37 }));
        assert_eq!(parse_status_switches("Name:\tx\n"), None);
    }

    #[test]
    fn this_process_is_readable() {
        let me = std::process::id();
        assert!(cpu_seconds(me).is_some());
        assert!(context_switches(me).is_some_and(|c| c.voluntary + c.involuntary > 0));
        assert_eq!(stat(me).map(|s| s.ppid), Some(unsafe { libc::getppid() } as u32));
    }
}
