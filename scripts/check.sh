#!/usr/bin/env bash
# Every check a change must pass: formatting, lints (which also compile the
# benches and examples), all tests and doc tests.
# The README's test command; .ci/run calls it after installing what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy (all targets, all features, warnings denied)"
cargo clippy --workspace --all-targets --all-features -- -D warnings

echo "== cargo doc (broken links denied)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features --quiet

echo "== cargo test (unit, integration through real HTTP, doc tests)"
cargo test --workspace --all-features
