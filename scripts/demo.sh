#!/usr/bin/env bash
# Install everything, then start Cove on 127.0.0.1:9000 (data in /var/lib/cove) and show a session
# working. Arguments go to `cove demo`; `--exit` stops the server once the demo has run.
set -euo pipefail

SCRIPT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
REPO="$(cd "$(dirname "$SCRIPT")/.." && pwd)"

# The server runs runc containers, which needs root.
if [[ $EUID -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "demo: must run as root (and sudo is not installed)" >&2; exit 1; }
    exec sudo -- bash "$SCRIPT" "$@"
fi

bash "$REPO/scripts/install.sh"
cd "$REPO"
exec .venv/bin/cove demo "$@"
