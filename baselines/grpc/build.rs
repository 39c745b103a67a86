//! Generates the gRPC stubs from `proto/boutique.proto` with a vendored
//! `protoc`, so the build needs no system protobuf compiler.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc);
    tonic_prost_build::configure().compile_with_config(config, &["proto/boutique.proto"], &["proto"])?;
    println!("cargo:rerun-if-changed=proto/boutique.proto");
    Ok(())
}
