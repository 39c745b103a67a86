//! Reports from a run directory: statistics, `summary.md` and figures.

pub mod chaos;
pub mod estimate;
pub mod figures;
pub mod soak;
pub mod stats;
pub mod summary;

use std::path::Path;

use crate::results::RunData;

/// Reads the run's stored files and (re)writes `summary.md` and `figures/`.
/// Returns the modes table for the terminal.
pub fn regenerate(dir: &Path) -> Result<String, String> {
    let data = RunData::read(dir)?;
    let stats = stats::compute(&data);
    std::fs::write(dir.join("summary.md"), summary::render(&data, &stats)).map_err(|e| format!("summary.md: {e}"))?;
    figures::draw_all(&data, &stats, &dir.join("figures"))?;
    Ok(summary::headline_table(&data, &stats))
}
