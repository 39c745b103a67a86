//! Generates the gRPC stubs from `proto/boutique.proto` with a vendored
//! `protoc`, so the build needs no system protobuf compiler. Every
//! generated client and server encodes and decodes through
//! `crate::codec::CountingCodec` (tonic-prost's codec, counting messages).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc);
    tonic_prost_build::configure().codec_path("crate::codec::CountingCodec").compile_with_config(
        config,
        &["proto/boutique.proto"],
        &["proto"],
    )?;
    println!("cargo:rerun-if-changed=proto/boutique.proto");
    Ok(())
}
