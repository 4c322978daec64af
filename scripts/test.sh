#!/usr/bin/env bash
# Runs every test of diskq: the Rust unit and integration tests (which
# also compile and run the C tests against libdiskq.so), the check that
# include/diskq.h matches what cbindgen generates, and the Node.js
# binding's tests.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== build (regenerates include/diskq.h when the C ABI changed)"
cargo build --all-targets

if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    echo "== include/diskq.h is committed as generated"
    if ! git diff --exit-code -- include/diskq.h; then
        echo "include/diskq.h differs from the cbindgen output: commit the regenerated header" >&2
        exit 1
    fi
fi

echo "== cargo test"
cargo test --no-fail-fast

if [ -f bindings/node/package.json ]; then
    echo "== node binding"
    cargo build --release --lib --bin diskq
    (cd bindings/node && npm ci --no-audit --no-fund && npm test)
fi
