#!/usr/bin/env bash
# Compatibility suite: independent Phoenix Channels clients from PyPI (and
# hand-written frames) against the real switchboard binary.
#
# Needs python3 (>= 3.11) and a built binary: `cargo build -p switchboard`
# (target/debug/switchboard), or SWITCHBOARD_BIN pointing at one. Creates
# tests/compat-python/.venv on first use and installs the pinned
# requirements.txt into it. Nothing is skipped: a missing tool is an error.
set -euo pipefail

# A relative SWITCHBOARD_BIN is taken from the caller's directory.
if [ -n "${SWITCHBOARD_BIN:-}" ]; then
  case "$SWITCHBOARD_BIN" in /*) ;; *) SWITCHBOARD_BIN="$PWD/$SWITCHBOARD_BIN" ;; esac
  export SWITCHBOARD_BIN
fi
cd "$(dirname "$0")"

fail() { echo "tests/compat-python/run.sh: $*" >&2; exit 1; }

command -v python3 >/dev/null || fail "python3 (>= 3.11) is required for the Python compatibility suite"
python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
  || fail "python3 >= 3.11 is required (found $(python3 --version 2>&1))"

bin="${SWITCHBOARD_BIN:-../../target/debug/switchboard}"
[ -x "$bin" ] || fail "no switchboard binary at $bin: run 'cargo build -p switchboard' or set SWITCHBOARD_BIN"

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv || fail "python3 -m venv failed (on Debian: apt-get install python3-venv)"
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt

exec .venv/bin/python -m pytest -q "$@"
