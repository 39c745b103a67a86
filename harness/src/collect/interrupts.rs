//! Parsers for `/proc/interrupts` and `/proc/softirqs` (the `procfs` crate
//! does not cover them): per source, the count on each CPU.

use std::collections::BTreeMap;

/// Interrupt counts by source name, one value per CPU.
pub type Counts = BTreeMap<String, Vec<u64>>;

/// Parses `/proc/interrupts`. A source is named by its number or mnemonic
/// plus the description the kernel prints after the counts (`24 virtio0-input.0`,
/// `LOC Local timer interrupts`). Rows with fewer columns (`ERR`, `MIS`)
/// count once, on CPU 0.
pub fn parse_interrupts(text: &str) -> Counts {
    let mut lines = text.lines();
    let cpus = lines.next().map(|h| h.split_whitespace().filter(|w| w.starts_with("CPU")).count()).unwrap_or(0);
    let mut out = Counts::new();
    for line in lines {
        let Some((name, rest)) = line.split_once(':') else { continue };
        let name = name.trim();
        let mut words = rest.split_whitespace().peekable();
        let mut counts = Vec::with_capacity(cpus);
        while counts.len() < cpus {
            match words.peek().and_then(|w| w.parse::<u64>().ok()) {
                Some(n) => {
                    counts.push(n);
                    words.next();
                }
                None => break,
            }
        }
        if counts.is_empty() {
            continue;
        }
        counts.resize(cpus.max(1), 0);
        let description: Vec<&str> = words.collect();
        let key = if description.is_empty() { name.to_string() } else { format!("{name} {}", description.join(" ")) };
        out.insert(key, counts);
    }
    out
}

/// Parses `/proc/softirqs` (`NET_RX`, `TIMER`, ... per CPU).
pub fn parse_softirqs(text: &str) -> Counts {
    let mut lines = text.lines();
    let cpus = lines.next().map(|h| h.split_whitespace().count()).unwrap_or(0);
    lines
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let counts: Vec<u64> = rest.split_whitespace().take(cpus).map(|w| w.parse().ok()).collect::<Option<_>>()?;
            Some((name.trim().to_string(), counts))
        })
        .collect()
}

/// What happened between two snapshots, per source and CPU (sources that
/// appeared meanwhile count from zero; unchanged sources are left out).
pub fn delta(before: &Counts, after: &Counts) -> Counts {
    after
        .iter()
        .map(|(k, a)| {
            let b = before.get(k);
            let d: Vec<u64> =
                a.iter().enumerate().map(|(i, &n)| n.saturating_sub(b.and_then(|b| b.get(i)).copied().unwrap_or(0))).collect();
            (k.clone(), d)
        })
        .filter(|(_, d)| d.iter().any(|&n| n > 0))
        .collect()
}

pub fn read_interrupts() -> Counts {
    std::fs::read_to_string("/proc/interrupts").map(|t| parse_interrupts(&t)).unwrap_or_default()
}

pub fn read_softirqs() -> Counts {
    std::fs::read_to_string("/proc/softirqs").map(|t| parse_softirqs(&t)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERRUPTS: &str = "           CPU0       CPU1       
  1:          9          0   IO-APIC   1-edge      i8042
 29:     441263     312007  PCI-MSIX-0000:00:03.0   1-edge      virtio0-input.0
NMI:          0          0   Non-maskable interrupts
LOC:    4461032    4263355   Local timer interrupts
RES:     612345     598765   Rescheduling interrupts
ERR:          0
MIS:          3
";

    const SOFTIRQS: &str = "                    CPU0       CPU1       
          HI:          0          0
       TIMER:     108368     141039
      NET_RX:     973569     815026
       SCHED:     244618     248059
";

    #[test]
    fn interrupts_by_source_and_cpu() {
        let c = parse_interrupts(INTERRUPTS);
        assert_eq!(c["29 PCI-MSIX-0000:00:03.0 1-edge virtio0-input.0"], vec![441263, 312007]);
        assert_eq!(c["LOC Local timer interrupts"], vec![4461032, 4263355]);
        assert_eq!(c["1 IO-APIC 1-edge i8042"], vec![9, 0]);
        assert_eq!(c["MIS"], vec![3, 0]);
        assert_eq!(c.len(), 7);
    }

    #[test]
    fn softirqs_by_kind_and_cpu() {
        let c = parse_softirqs(SOFTIRQS);
        assert_eq!(c["NET_RX"], vec![973569, 815026]);
        assert_eq!(c.len(), 4);
    }

    #[test]
    fn deltas_per_cpu_tolerate_new_sources() {
        let before = parse_softirqs(SOFTIRQS);
        let mut after = before.clone();
        after.get_mut("NET_RX").unwrap()[1] += 10;
        after.get_mut("TIMER").unwrap()[0] += 5;
        after.insert("NEW".into(), vec![1, 2]);
        let d = delta(&before, &after);
        assert_eq!((&d["NET_RX"], &d["TIMER"], &d["NEW"]), (&vec![0, 10], &vec![5, 0], &vec![1, 2]));
        assert!(!d.contains_key("HI"), "unchanged sources are left out");
    }

    #[test]
    fn this_machine_parses() {
        assert!(read_softirqs().contains_key("NET_RX"));
        assert!(!read_interrupts().is_empty());
    }
}
