"""Where an installation keeps what it builds or fetches once per machine, beside its Python
environment: the sandboxes' compiled init (sandbox/init_binary.py) and the web pages' npm packages
(server/npm_packages.py)."""

from __future__ import annotations

import sys
from pathlib import Path

SHARE_DIR = Path(sys.prefix) / "share" / "cove"
