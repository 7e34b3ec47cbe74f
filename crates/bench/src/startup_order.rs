//! `--startup-order FILE`: writes the symbol ordering file the gateway's
//! build links with (`link/startup-order.txt`, read by `build.rs`).
//!
//! Each gateway binary given runs under valgrind's callgrind, which names
//! every function it executes: once from exec to SERVING and a SIGTERM
//! (what an idle sidecar has run), once more with a few seconds of the
//! mixed workload, for each store. The file lists the idle runs' functions
//! first, then the ones only the load ran, so an idle gateway's code is a
//! few hundred contiguous pages and a busy one's the next few hundred.
//! Symbol names differ between build profiles and feature sets, so each
//! build that is shipped or measured is given (the first one with
//! `--gateway`, the others with `--also`); a name a build lacks, the linker
//! skips.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::fleet::{self, Scratch, Store};
use crate::load::{self, Mix};
use crate::servers;

/// How long each traced gateway serves the mixed workload.
const LOAD_FOR: Duration = Duration::from_secs(3);

/// How long a traced gateway may take to exit after SIGTERM (callgrind
/// writes its output then).
const EXIT_BOUND: Duration = Duration::from_secs(60);

/// Traces every binary in `exes` and writes the ordering file to `out`.
pub async fn run(exes: &[String], out: &Path) {
    servers::ensure_installed("valgrind", "valgrind").await;
    let scratch = Scratch::new();
    let keys = scratch.keyring();
    let (_dev, upstream) = fleet::dev_upstream(&exes[0]).await;
    let (mut idle, mut busy) = (Vec::new(), Vec::new());
    for (i, exe) in exes.iter().enumerate() {
        for (j, file_store) in [false, true].into_iter().enumerate() {
            for (k, load) in [false, true].into_iter().enumerate() {
                let trace = scratch.join(&format!("callgrind.{i}.{j}.{k}"));
                let db = scratch.join(&format!("tokens.{i}.{j}.{k}.redb"));
                trace_one(
                    exe,
                    &upstream,
                    &keys,
                    file_store.then_some(&db),
                    load,
                    &trace,
                )
                .await;
                let names = executed(&trace, exe);
                if load { &mut busy } else { &mut idle }.push(names);
            }
        }
    }
    let mut seen = HashSet::new();
    let mut text = String::from(HEADER);
    for name in idle.iter().chain(&busy).flatten() {
        if seen.insert(name.as_str()) {
            let _ = writeln!(text, "{name}");
        }
    }
    std::fs::write(out, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
    println!("{} symbols written to {}", seen.len(), out.display());
}

/// The file's first lines (lld skips `#` lines).
const HEADER: &str = "# The gateway's functions in the order build.rs links them: start-up first.\n\
# Written by `dcr-bench --startup-order` (README, Performance); do not edit.\n";

/// Runs `exe` under callgrind until SERVING, serves the mixed workload when
/// `load`, then stops it with SIGTERM; the trace lands in `trace`.
async fn trace_one(
    exe: &str,
    upstream: &str,
    keys: &Path,
    db: Option<&PathBuf>,
    load: bool,
    trace: &Path,
) {
    let out_flag = format!("--callgrind-out-file={}", trace.display());
    let wrapper = [
        "valgrind",
        "--tool=callgrind",
        "--demangle=no",
        "--compress-strings=no",
        "--compress-pos=no",
        &out_flag,
    ];
    let store = match db {
        Some(path) => Store::File { path, keys },
        None => Store::Memory,
    };
    let (proc, _) = fleet::gateway_under(&wrapper, exe, upstream, store, &[]).await;
    if load {
        let path = fleet::gateway_path("traced", &proc).await;
        let mut seeds = fleet::seeds(&path.target, 2).await;
        load::run(&path.target, Mix::Realistic, &mut seeds, LOAD_FOR).await;
    }
    proc.terminate(EXIT_BOUND).await;
}

/// The functions of `exe` that the callgrind output at `trace` ran.
fn executed(trace: &Path, exe: &str) -> Vec<String> {
    let text = std::fs::read_to_string(trace)
        .unwrap_or_else(|e| panic!("no callgrind output at {}: {e}", trace.display()));
    let exe = std::fs::canonicalize(exe).unwrap_or_else(|_| PathBuf::from(exe));
    let names = functions_of(&text, &exe);
    assert!(
        !names.is_empty(),
        "callgrind named no function of {} (stripped? build it with symbols)",
        exe.display()
    );
    names
}

/// The functions of the object `exe` in callgrind output `text`
/// (`--compress-strings=no`), in the order it names them, without
/// callgrind's recursion marks (`'2`) and its stand-ins for code without a
/// symbol (`0x…`, `(below main)`).
fn functions_of(text: &str, exe: &Path) -> Vec<String> {
    let mut in_exe = false;
    let mut names = Vec::new();
    for line in text.lines() {
        if let Some(object) = line.strip_prefix("ob=") {
            in_exe = Path::new(object) == exe;
        } else if let Some(name) = line.strip_prefix("fn=")
            && in_exe
        {
            let name = match name.rsplit_once('\'') {
                Some((base, mark)) if mark.bytes().all(|b| b.is_ascii_digit()) => base,
                _ => name,
            };
            if !name.starts_with("0x") && !name.starts_with('(') {
                names.push(name.to_owned());
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn functions_of_keeps_only_the_binary_s_named_functions() {
        let text = "version: 1\n\
            ob=/bin/gw\nfn=_ZN4main17h01E\n1 5\n\
            cob=/lib/libc.so.6\ncfn=memcpy\ncalls=1 0\n1 2\n\
            ob=/lib/libc.so.6\nfn=memcpy\n1 2\n\
            ob=/bin/gw\nfn=_ZN4walk17h02E'2\nfn=0x0000000000401000\n\
            fn=(below main)\nfn=_ZN4quote17h03E'x\n";
        assert_eq!(
            functions_of(text, Path::new("/bin/gw")),
            ["_ZN4main17h01E", "_ZN4walk17h02E", "_ZN4quote17h03E'x"]
        );
        assert!(functions_of(text, Path::new("/bin/other")).is_empty());
    }
}
