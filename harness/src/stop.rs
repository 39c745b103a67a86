//! Stopping an experiment early: the first SIGINT or SIGTERM asks every
//! wait and load generator to finish (the current mode is marked cut short,
//! the rest do not run, the run directory is still written); the second
//! exits at once (the deployment's processes die with the harness through
//! PR_SET_PDEATHSIG).

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Installs the handler (once per process; goose's own handler is then
/// refused, so its users are stopped from here instead).
pub fn install() {
    let installed = ctrlc::set_handler(|| {
        if REQUESTED.swap(true, Ordering::SeqCst) {
            eprintln!("harness: second interrupt, exiting now");
            std::process::exit(130);
        }
        eprintln!("harness: interrupted - finishing this mode, then writing what was measured (again to quit now)");
        goose::trigger_killswitch("harness interrupted");
    });
    if let Err(e) = installed {
        eprintln!("harness: cannot install the interrupt handler ({e}); an interrupt will lose this run");
    }
}

/// Whether an interrupt asked the experiment to stop.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::Relaxed)
}
