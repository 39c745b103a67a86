//! `parking`: the `spright` CLI with the parking handlers built in.

fn main() -> std::process::ExitCode {
    spright::cli::main_with(parking::spright::registry())
}
