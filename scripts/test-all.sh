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
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}"
fi

cargo build --workspace --all-targets --all-features
cargo test --workspace --all-features --no-fail-fast
