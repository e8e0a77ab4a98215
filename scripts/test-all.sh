#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine with a Rust toolchain, then runs
# every test. Safe to run again: installs are skipped when already present.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v protoc >/dev/null 2>&1 || need_apt+=(protobuf-compiler)
command -v cc >/dev/null 2>&1 || need_apt+=(build-essential)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
# Real etcd for the storage and HA tests (the tests start and stop their own servers).
command -v etcd >/dev/null 2>&1 || need_apt+=(etcd-server)
# kill(1) for the tests that SIGSTOP/SIGCONT etcd and scheduler processes.
{ [ -x /usr/bin/kill ] || [ -x /bin/kill ]; } || need_apt+=(procps)
# A static busybox: the Docker tests build their images FROM scratch with it (no registry is
# reachable); they skip with a printed reason where no Docker engine answers.
{ [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; } || need_apt+=(busybox-static)
# Headless Chromium for Brigade's web UI test.
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}"
fi

# The Kafka-protocol broker Brigade's tests start (tansu, from crates.io), built once into
# target/tools and kept there.
bash examples/brigade/scripts/install-tansu.sh

cargo build --workspace --all-targets --all-features
cargo test --workspace --all-features --no-fail-fast

# Fuzz targets (fuzz/, cargo-fuzz layout, its own workspace): each runs for FUZZ_SECONDS under
# libFuzzer when a nightly toolchain is installed (cargo-fuzz is installed from crates.io when
# missing). Without nightly they are only type-checked (`cargo check`, which costs CI about half
# what a build does), on stable. The same entry points always run as
# proptest byte fuzzers in tests/fuzz_inputs.rs above. FUZZ_SECONDS=0 skips this step.
FUZZ_SECONDS="${FUZZ_SECONDS:-5}"
fuzz_targets=(recordio json_decode json_round_trip text_parsers master_http agent_http)
if [ "$FUZZ_SECONDS" = "0" ]; then
  echo "test-all: FUZZ_SECONDS=0: cargo-fuzz targets skipped"
elif rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
  for target in "${fuzz_targets[@]}"; do
    echo "test-all: fuzzing $target for ${FUZZ_SECONDS}s"
    # No sanitizer: the code under test has no unsafe, and the HTTP targets keep their servers
    # for the whole run (LeakSanitizer would report them).
    cargo +nightly fuzz run --sanitizer none "$target" -- -max_total_time="$FUZZ_SECONDS"
  done
else
  echo "test-all: no nightly toolchain (see 'rustup toolchain list'), so cargo-fuzz cannot run the fuzz targets; type-checking them on stable instead"
  cargo check --manifest-path fuzz/Cargo.toml --bins
fi
