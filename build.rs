//! Compiles `proto/` into Rust with no system `protoc`: protox parses the files,
//! tonic-prost-build generates the messages and the service, and the encoded file
//! descriptor set is written next to them for gRPC reflection.

use std::{env, fs, path::PathBuf};

use prost::Message as _;

/// Messages that carry a secret (client secret, registration access token or
/// initial access token). They get hand-written, redacting `Debug` impls in
/// `src/api/redact.rs` instead of derived ones that would print the secret.
const SECRET_BEARING: &[&str] = &[
    ".dcr.v1.Client",
    ".dcr.v1.RegisterClientRequest",
    ".dcr.v1.GetClientRequest",
    ".dcr.v1.UpdateClientRequest",
    ".dcr.v1.DeleteClientRequest",
    ".dcr.v1.RotateClientSecretRequest",
    ".dcr.v1.RotateRegistrationTokenRequest",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let fds = protox::compile(["dcr/v1/dcr.proto"], ["proto"])?;
    fs::write(out_dir.join("dcr_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .skip_debug(SECRET_BEARING)
        // Malformed requests are INVALID_ARGUMENT with a short reason.
        .codec_path("crate::api::codec::DcrCodec")
        .compile_fds(fds)?;
    Ok(())
}
