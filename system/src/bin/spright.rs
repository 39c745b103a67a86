//! `spright`: the control plane, gateway and function runner, with the
//! example chain's handlers built in.

fn main() -> std::process::ExitCode {
    spright::cli::main_with(spright::examples::registry())
}
