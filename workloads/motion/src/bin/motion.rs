//! `motion`: the `spright` CLI with the motion-detection handlers built in.

fn main() -> std::process::ExitCode {
    spright::cli::main_with(motion::spright::registry())
}
