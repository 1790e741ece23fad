#!/usr/bin/env bash
# The whole test suite: formatting, lints, Rust unit and integration tests,
# then the end-to-end suite with the official phoenix.js client and an
# independent Python client against the real binary, and a bounded fuzzing run
# of every parser of untrusted input (nightly toolchain). Requires the Rust
# toolchain, Node.js >= 20 with npm, Python >= 3.11, and Redis (a server on
# 127.0.0.1:6379 plus the redis-server binary). The first run fetches
# packages from npm and PyPI. Nothing is
# skipped: a missing tool is an error, not a pass.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "scripts/test.sh: $*" >&2; exit 1; }

command -v cargo >/dev/null || fail "cargo is required (install Rust with rustup)"
command -v node >/dev/null || fail "Node.js >= 20 is required for the phoenix.js end-to-end suite"
command -v npm >/dev/null || fail "npm is required for the phoenix.js end-to-end suite"
command -v python3 >/dev/null || fail "python3 >= 3.11 is required for the Python compatibility suite"
(command -v rustup >/dev/null && rustup run nightly rustc --version >/dev/null 2>&1) || fail "the nightly toolchain is required for the fuzz step (rustup toolchain install nightly)"
command -v redis-server >/dev/null || fail "redis-server is required for the cluster tests (they start a Redis of their own for the outage test)"
redis_ping() { exec 3<>/dev/tcp/127.0.0.1/6379 && printf 'PING\r\n' >&3 && read -r -t 2 reply <&3 && [[ $reply == +PONG* ]]; }
( redis_ping ) 2>/dev/null || fail "Redis must be running on 127.0.0.1:6379 for the cluster tests (e.g. redis-server --daemonize yes --save '' --appendonly no)"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || fail "Node.js >= 20 is required (found $(node --version))"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test"
cargo test --workspace
echo "== phoenix.js end-to-end suite"
cargo build -p switchboard
export SWITCHBOARD_BIN="$PWD/target/debug/switchboard"
(cd tests/e2e && npm ci --no-audit --no-fund && npm test)
echo "== Python compatibility suite (independent Phoenix clients)"
tests/compat-python/run.sh
echo "== fuzz (bounded)"
scripts/fuzz.sh "${FUZZ_SECONDS_PER_TARGET:-20}"
