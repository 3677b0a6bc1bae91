#!/usr/bin/env bash
# Run meshnode's whole test suite on a fresh Debian machine with Python 3.11:
# installs what the tests need (a virtualenv with the `test` extra, Debian's Chromium for the
# browser tests), then runs ruff, mypy and pytest. Exits non-zero when anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${MESHNODE_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"

if ! command -v chromium >/dev/null 2>&1; then
    echo "== installing Debian's chromium (browser tests)"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

# Fedify interop tests (tests/interop/): Node.js and the pinned @fedify packages. Under CI a
# missing Node is installed from Debian; elsewhere those tests skip when Node is missing.
if ! command -v node >/dev/null 2>&1 && [ "${CI:-}" = "true" ]; then
    echo "== installing Debian's nodejs and npm (Fedify interop tests)"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm >/dev/null
fi
# The deferred CA certificates' TLS tests (tests/test_memory_tls.py) make their own authority with
# the openssl command: installed from Debian under CI; elsewhere those two tests skip without it.
if ! command -v openssl >/dev/null 2>&1 && [ "${CI:-}" = "true" ]; then
    echo "== installing Debian's openssl (TLS tests)"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq openssl >/dev/null
fi
if command -v node >/dev/null 2>&1; then
    echo "== installing the Fedify interop packages (npm ci in tests/interop/fedify)"
    (cd tests/interop/fedify && npm ci --no-audit --no-fund --loglevel=error)
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "== creating virtualenv $VENV"
    "$PYTHON" -m venv "$VENV"
fi
echo "== installing meshnode with its test extra"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -e '.[test]'

echo "== ruff"
"$VENV/bin/ruff" check meshnode tests scripts
echo "== mypy"
"$VENV/bin/mypy"
echo "== pytest"
"$VENV/bin/python" -m pytest "$@"
