#!/usr/bin/env bash
# Runs every fuzz target for a bounded time: `fuzz/run.sh [SECONDS]` (default 60
# each; CI uses a few). Installs cargo-fuzz when missing. libFuzzer needs its
# sanitizer flags, which the stable toolchain accepts with RUSTC_BOOTSTRAP.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked --version 0.13.1
fi
export RUSTC_BOOTSTRAP=1
for target in $(cargo fuzz list); do
    mkdir -p "corpus/$target"
    seeds="seeds/$target"
    [ -d "$seeds" ] || seeds=""
    echo "== $target ($seconds s)"
    cargo fuzz run --sanitizer none -O "$target" "corpus/$target" $seeds -- \
        -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=1024 -timeout=10
done
