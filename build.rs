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

/// The functions the gateway runs from exec to serving, one mangled symbol a
/// line, written by `dcr-bench --startup-order` (see the README, Performance).
/// Linked first and together, they fill a few hundred pages of code; linked
/// where they fall, they pull some 8 MiB of the binary's 13 MB of code into an
/// idle sidecar's resident set, because the kernel maps file pages in runs
/// (fault-around and large page-cache folios), not one by one.
const STARTUP_ORDER: &str = "link/startup-order.txt";

/// The target whose default linker (rust-lld, through `cc`) reads a symbol
/// ordering file. Other linkers refuse the flag, so they link without it.
const ORDERED_TARGET: &str = "x86_64-unknown-linux-gnu";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    order_startup_symbols()?;
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

/// Links the gateway binary with its start-up functions first
/// ([`STARTUP_ORDER`]), when the linker is the target's default rust-lld: not
/// when a linker is configured (`RUSTC_LINKER`, or linker flags in
/// `RUSTFLAGS`), and the file is there. A name the build does not have (the
/// code changed since the file was written, another toolchain) is skipped
/// silently, so a stale file costs resident memory, never a build.
fn order_startup_symbols() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={STARTUP_ORDER}");
    let rustflags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if env::var("TARGET")? != ORDERED_TARGET
        || env::var_os("RUSTC_LINKER").is_some()
        || rustflags.contains("link")
    {
        return Ok(());
    }
    let file = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?).join(STARTUP_ORDER);
    if !file.is_file() {
        return Ok(());
    }
    // `-Xlinker` keeps the path one argument whatever it holds (`-Wl,` would
    // split it at commas).
    for arg in [
        "-Xlinker".to_owned(),
        format!("--symbol-ordering-file={}", file.display()),
        "-Xlinker".to_owned(),
        "--no-warn-symbol-ordering".to_owned(),
    ] {
        println!("cargo:rustc-link-arg-bin=dcr-gateway={arg}");
    }
    Ok(())
}
