//! The committed reference runs regenerate: `harness figures` on a copy of
//! a run's stored data (manifest and parquet tables, nothing else) writes
//! the same summary.md and figures, byte for byte, as those committed next
//! to it. And each run is what a reference must be: from a commit, with
//! its data, parquet only, under 10 MB.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The chaos reference keeps every request of ~20 minutes of open-loop
/// load (1.5 M records, 8 MB of zstd parquet): the largest run here.
const MAX_RUN_BYTES: u64 = 12 * 1024 * 1024;

fn reference_runs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../results/reference");
    let mut runs: Vec<PathBuf> =
        std::fs::read_dir(&root).unwrap().flatten().map(|e| e.path()).filter(|p| p.join("manifest.yaml").is_file()).collect();
    runs.sort();
    runs
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).filter(|p| p.is_file()).collect();
    out.sort();
    out
}

fn size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| if e.path().is_dir() { size(&e.path()) } else { e.metadata().map(|m| m.len()).unwrap_or(0) })
        .sum()
}

#[test]
fn committed_reference_runs_regenerate_byte_for_byte() {
    let runs = reference_runs();
    assert!(runs.len() >= 4, "expected the boutique, sweep, motion and parking reference runs: {runs:?}");
    for run in runs {
        let name = run.file_name().unwrap().to_string_lossy().to_string();
        // What a reference run is.
        let manifest = std::fs::read_to_string(run.join("manifest.yaml")).unwrap();
        assert!(manifest.contains("reference: true"), "{name}: not written as a reference run");
        assert!(
            !manifest.contains("-dirty\n") || manifest.contains("allow_dirty: true"),
            "{name}: a reference run from a dirty tree must say --allow-dirty"
        );
        assert!(manifest.contains("build_profile: release"), "{name}: references measure optimized builds");
        assert!(run.join("requests.parquet").is_file() && run.join("counters.parquet").is_file(), "{name}: its data is missing");
        assert!(!files(&run).iter().any(|f| f.extension().is_some_and(|e| e == "csv")), "{name}: no CSV copies in a reference");
        assert!(size(&run) < MAX_RUN_BYTES, "{name}: {} bytes, over 12 MiB", size(&run));

        // Only the stored data goes into the copy.
        let copy = std::env::temp_dir().join(format!("harness-reference-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&copy);
        std::fs::create_dir_all(&copy).unwrap();
        for f in files(&run) {
            let ext = f.extension().map(|e| e.to_string_lossy().to_string());
            if f.file_name().unwrap() == "manifest.yaml" || ext.as_deref() == Some("parquet") {
                std::fs::copy(&f, copy.join(f.file_name().unwrap())).unwrap();
            }
        }
        let out = Command::new(env!("CARGO_BIN_EXE_harness")).arg("figures").arg(&copy).output().unwrap();
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let regenerated = |rel: &str| std::fs::read(copy.join(rel)).unwrap_or_else(|e| panic!("{name}: {rel} not regenerated: {e}"));
        assert!(
            regenerated("summary.md") == std::fs::read(run.join("summary.md")).unwrap(),
            "{name}: summary.md differs from the committed one (diff {} {})",
            copy.join("summary.md").display(),
            run.join("summary.md").display()
        );
        let committed = files(&run.join("figures"));
        assert!(!committed.is_empty(), "{name}: no figures committed");
        let fresh: Vec<PathBuf> = files(&copy.join("figures"));
        assert_eq!(
            fresh.iter().map(|f| f.file_name().unwrap().to_owned()).collect::<Vec<_>>(),
            committed.iter().map(|f| f.file_name().unwrap().to_owned()).collect::<Vec<_>>(),
            "{name}: the committed figures are not the set `harness figures` draws"
        );
        for f in committed {
            let rel = format!("figures/{}", f.file_name().unwrap().to_string_lossy());
            assert!(regenerated(&rel) == std::fs::read(&f).unwrap(), "{name}: {rel} differs from the committed one");
        }
        std::fs::remove_dir_all(&copy).unwrap();
    }
}
