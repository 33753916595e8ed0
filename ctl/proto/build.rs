//! Compiles `floodgate/v1/*.proto` with `protox` (pure Rust, no `protoc` needed) and generates
//! prost types plus tonic clients and servers. Also writes the file descriptor set used for
//! gRPC server reflection.

use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "floodgate/v1/common.proto",
    "floodgate/v1/admin.proto",
    "floodgate/v1/relay.proto",
    "floodgate/v1/client.proto",
    "floodgate/v1/lease.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for p in PROTOS {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = protox::compile(PROTOS, ["."])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("floodgate_descriptor.bin"), prost::Message::encode_to_vec(&fds))?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .server_mod_attribute(".", "#[cfg(feature = \"server\")]")
        .compile_fds(fds)?;
    Ok(())
}
