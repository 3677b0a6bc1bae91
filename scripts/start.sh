#!/usr/bin/env bash
# Start a meshnode community node on a fresh Debian machine / Raspberry Pi with Python 3.11.
# First run: creates a virtualenv, installs meshnode, creates the node in DATA_DIR and asks for
# the first administrator's password. Later runs: just start the node.
#
#   ./scripts/start.sh                       # data in ./meshnode-data, http://127.0.0.1:8080
#   MESHNODE_URL=http://192.168.1.20:8080 MESHNODE_HOST=0.0.0.0 ./scripts/start.sh
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${MESHNODE_VENV:-.venv}"
DATA_DIR="${MESHNODE_DATA_DIR:-./meshnode-data}"
NAME="${MESHNODE_NAME:-Ma communauté}"
HANDLE="${MESHNODE_HANDLE:-communaute}"
URL="${MESHNODE_URL:-http://127.0.0.1:8080}"
HOST="${MESHNODE_HOST:-127.0.0.1}"
ADMIN="${MESHNODE_ADMIN:-admin}"

if [ ! -x "$VENV/bin/meshnode" ]; then
    echo "== installing meshnode into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e .
fi

if [ ! -f "$DATA_DIR/config.toml" ]; then
    "$VENV/bin/meshnode" init --data-dir "$DATA_DIR" --name "$NAME" --handle "$HANDLE" \
        --url "$URL" --host "$HOST" --quiet
    if [ -n "${MESHNODE_ADMIN_PASSWORD:-}" ]; then
        printf '%s\n' "$MESHNODE_ADMIN_PASSWORD" | "$VENV/bin/meshnode" member add \
            --data-dir "$DATA_DIR" --username "$ADMIN" --admin --password-stdin
    elif [ -t 0 ]; then
        echo "== choose a password for the first administrator, '$ADMIN'"
        "$VENV/bin/meshnode" member add --data-dir "$DATA_DIR" --username "$ADMIN" --admin
    else
        echo "== no terminal: add an administrator later with"
        echo "   $VENV/bin/meshnode member add --data-dir $DATA_DIR --username $ADMIN --admin"
    fi
fi

exec "$VENV/bin/meshnode" run --data-dir "$DATA_DIR"
