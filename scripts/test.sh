#!/usr/bin/env bash
# Install everything (PostgreSQL included), then run the formatter check, the linter, mypy and
# the tests. Arguments go to pytest. Any failing step fails the script.
set -euo pipefail

SCRIPT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
REPO="$(cd "$(dirname "$SCRIPT")/.." && pwd)"

# The tests start real runc sandboxes and a PostgreSQL server as its own user: both need root.
if [[ $EUID -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "test: must run as root (and sudo is not installed)" >&2; exit 1; }
    exec sudo -- bash "$SCRIPT" "$@"
fi

bash "$REPO/scripts/install.sh" --with-test-deps
cd "$REPO"
BIN="$REPO/.venv/bin"

step() {
    echo "test: $*"
    "$@"
}

step "$BIN/ruff" format --check src tests bench
step "$BIN/ruff" check src tests bench
step "$BIN/mypy"

echo "test: $BIN/pytest -q $*"
status=0
"$BIN/pytest" -q "$@" || status=$?
if [[ $status -eq 5 ]]; then
    # pytest's "no tests collected": a typo in a path must not pass as a green run.
    echo "test: pytest collected no tests" >&2
elif [[ $status -eq 0 ]]; then
    echo "test: all passed"
fi
exit "$status"
