"""Write src/cove/sdk/sync_client.py from async_client.py, as httpcore makes its sync code.

The SDK's two clients are one piece of code: each call is described once in the sans-IO core
(sdk/core.py and the *_calls.py modules), and the facades that send those calls are written once,
for asyncio, in async_client.py. This turns that file into the blocking one: `async`/`await` go,
`Async` names lose the prefix, and lines marked `# async only` are left out. Run it after editing
async_client.py (tests/unit/test_sync_client.py fails until you do):

    .venv/bin/python scripts/unasync.py
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SDK = Path(__file__).resolve().parent.parent / "src" / "cove" / "sdk"
HEADER = '''"""The blocking client: `AgentBay` and the `Session` objects it hands out.

Generated from async_client.py by scripts/unasync.py: edit that file, then run the script.
"""
'''
TOKENS = [
    (r"\basync def\b", "def"),
    (r"\basync with\b", "with"),
    (r"\basync for\b", "for"),
    (r"\bawait ", ""),
    (r"\bAsyncIterator\b", "Iterator"),
    (r"\bAsync([A-Z]\w*)", r"\1"),
    (r"\b__aenter__\b", "__enter__"),
    (r"\b__aexit__\b", "__exit__"),
    (r"\.aclose\(", ".close("),
    (r"\.aread\(", ".read("),
    (r"\.aiter_raw\(", ".iter_raw("),
    (r"\b_async_chunks\((\w+)\)", r"\1"),
]
"""Replacements, in order, on every line."""
ASYNC_ONLY = "# async only"
"""Ends a line that the blocking client does without; on a `def` line, the whole function."""


def unasync(source: str) -> str:
    """The blocking client's text (before formatting) from the asyncio client's."""
    body = source[source.index('"""', 3) + 3 :].lstrip("\n")
    lines: list[str] = []
    skipping_indent: int | None = None
    for line in body.splitlines():
        indent = len(line) - len(line.lstrip())
        if skipping_indent is not None:
            if not line.strip() or indent > skipping_indent:
                continue
            skipping_indent = None
        if line.rstrip().endswith(ASYNC_ONLY):
            if line.lstrip().startswith(("def ", "async def ")):
                skipping_indent = indent
            continue
        for pattern, replacement in TOKENS:
            line = re.sub(pattern, replacement, line)
        lines.append(line)
    text = HEADER + "\n" + "\n".join(lines) + "\n"
    return re.sub(r"\n{4,}", "\n\n\n", text)


def formatted(text: str) -> str:
    """`text` as ruff formats and sorts it (the project's own settings)."""
    ruff = str(Path(sys.executable).parent / "ruff")
    sorted_imports = subprocess.run(
        [ruff, "check", "--select", "I,F401", "--fix", "--stdin-filename", str(SDK / "sync_client.py"), "-"],
        input=text,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return subprocess.run(
        [ruff, "format", "--stdin-filename", str(SDK / "sync_client.py"), "-"],
        input=sorted_imports,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def generated() -> str:
    return formatted(unasync((SDK / "async_client.py").read_text()))


if __name__ == "__main__":
    (SDK / "sync_client.py").write_text(generated())
    print(f"wrote {SDK / 'sync_client.py'}")
