//! Faults under load, per mode: requests answered without error and
//! requests failed per second (by when they were sent) over the chaos
//! phases, each fault's window shaded.

use plotters::style::RGBColor;

use super::axes::AxisSpec;
use super::chart::{Band, Chart, Panel, Series};
use super::style::{self, Marker, Stroke, Style};
use super::timeline::rate_bins;
use crate::experiment::chaos::fault_phases;
use crate::experiment::search::is_error;
use crate::results::{ModeRun, RunData};

const ERRORS: Style = Style { color: RGBColor(204, 51, 17), marker: Marker::Cross, filled: true, dash: Stroke::Dashed };
/// Fault windows alternate between these, so neighbours stay apart.
const FAULT_BANDS: [RGBColor; 2] = [RGBColor(255, 228, 214), RGBColor(222, 232, 247)];
/// Seconds per bin: fine enough to show a recovery of a fraction of a second.
const BIN_S: f64 = 0.5;

/// The chart of one mode's chaos phases (time from its chaos lead-in).
pub fn chart(data: &RunData, run: &ModeRun, index: usize) -> Option<Chart> {
    let faults = fault_phases(&run.phases);
    let t0 = run.phase("chaos lead-in")?.from_s;
    let hi = run.phases.last()?.to_s - t0;
    let rows: Vec<_> = data.requests.iter().filter(|r| r.mode == run.mode && r.repeat == run.repeat && r.r.time_s >= t0).collect();
    let ok = rate_bins(rows.iter().filter(|r| !is_error(r.r.status)).map(|r| (r.r.time_s - t0, 0.0, 1.0)), (0.0, hi), BIN_S, true);
    let failed = rate_bins(rows.iter().filter(|r| is_error(r.r.status)).map(|r| (r.r.time_s - t0, 0.0, 1.0)), (0.0, hi), BIN_S, true);
    let series =
        vec![Series::line("answered without error", style::mode(&run.mode, index), ok), Series::line("5xx or no answer", ERRORS, failed)];
    let mut c = Chart::new(
        format!("Faults under load - {}: requests per second by send time", run.label),
        AxisSpec::linear("time since the chaos load began (s)").range(0.0, hi),
        vec![Panel::new(AxisSpec::linear(&format!("requests/s ({BIN_S} s bins)")), series)],
    );
    c.bands = faults
        .iter()
        .enumerate()
        .map(|(i, p)| Band { label: p.label.clone(), from: p.from_s - t0, to: p.to_s - t0, color: FAULT_BANDS[i % 2] })
        .collect();
    c.legend.title = Some("series, then each fault's window".into());
    c.notes.push("each shaded window runs from a fault until the next one; the gap before the last is the quiesce without load".into());
    c.size = (1200, 640);
    Some(c)
}
