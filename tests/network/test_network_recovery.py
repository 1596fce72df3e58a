"""A session's network across a server crash: its rules come back, and nothing is left behind."""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path

from tests.integration.runtimes import ensure_runsc
from tests.integration.server import NOTHING_LEFT, running_server
from tests.network.test_egress import API, DENIED, probe, refused_fast

RUNTIMES = ("runc", "gvisor")
"""One crash for both runtimes: the server dies with sandboxes of each, and pays its two starts once."""


def interface(session_id: str) -> str:
    return "cv" + session_id[-13:]


def test_rules_survive_a_sigkill_and_orphans_are_swept(data_root: Path) -> None:
    ensure_runsc()
    with running_server(data_root / "data", warm_pool=1) as server, server.client() as client:

        def create(runtime: str) -> str:
            body = {"network": {"deny_out": [f"{DENIED}/32"]}, "runtime": runtime}
            created = client.post("/v1/sessions", json=body)
            assert created.status_code == 201, created.text
            return str(created.json()["session"]["session_id"])

        survivors, orphans = (
            [create(runtime) for runtime in RUNTIMES],
            [create(runtime) for runtime in RUNTIMES],
        )
        ours = {interface(session_id) for session_id in survivors + orphans}
        before = set(server.interfaces())
        assert ours <= before

        server.stop(signal.SIGKILL)
        with sqlite3.connect(server.data_dir / "cove.db") as db:  # sandboxes no row owns
            for orphan in orphans:
                db.execute("DELETE FROM session_labels WHERE session_id = ?", (orphan,))
                db.execute("DELETE FROM sessions WHERE session_id = ?", (orphan,))
        server.start()

        for survivor in survivors:
            reached, refused = probe(server, survivor, ("tcp", API, 80), ("tcp", DENIED, 80))
            assert reached == "ok" and refused_fast(refused), (survivor, reached, refused)
            shown = client.get(f"/v1/sessions/{survivor}/network").json()
            assert shown["policy"]["deny_out"] == [f"{DENIED}/32"] and shown["denied"]["count"] >= 1

        after = set(server.interfaces())
        for orphan in orphans:
            assert interface(orphan) not in after, "the orphan's interface went with its sandbox"
            assert not [chain for chain in server.session_chains() if orphan[-13:] in chain]
        assert not (before - ours) & after, (
            "the crashed server's prepared sandboxes lost their interfaces too"
        )

        for survivor in survivors:
            assert client.delete(f"/v1/sessions/{survivor}").status_code == 200
        assert server.leftovers() == NOTHING_LEFT
