//! `boutique`: the `spright` CLI with Online Boutique's ten handlers built
//! in. `boutique run --chain workloads/boutique/chain.yaml`.

fn main() -> std::process::ExitCode {
    spright::cli::main_with(boutique::spright::registry())
}
