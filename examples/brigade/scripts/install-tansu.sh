#!/bin/sh
# Installs the Kafka-protocol broker `tansu` (crates.io, feature dynostore) that Brigade's tests
# start, into <workspace>/target/tools/bin, unless one is already there, in TANSU_BIN or on PATH.
set -eu
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
if [ -n "${TANSU_BIN:-}" ] && [ -x "$TANSU_BIN" ]; then
    echo "tansu: $TANSU_BIN"
    exit 0
fi
if [ -x "$ROOT/target/tools/bin/tansu" ]; then
    echo "tansu: $ROOT/target/tools/bin/tansu"
    exit 0
fi
if command -v tansu >/dev/null 2>&1; then
    echo "tansu: $(command -v tansu)"
    exit 0
fi
nice cargo install tansu --features dynostore --locked --root "$ROOT/target/tools"
echo "tansu: $ROOT/target/tools/bin/tansu"
