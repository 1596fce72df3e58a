"""A session's network across a server crash: its rules come back, and nothing is left behind."""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path

from tests.integration.runtimes import BOTH_RUNTIMES
from tests.integration.server import NOTHING_LEFT, running_server
from tests.network.test_egress import API, DENIED, probe, refused_fast


@BOTH_RUNTIMES
def test_rules_survive_a_sigkill_and_orphans_are_swept(data_root: Path, runtime: str) -> None:
    with running_server(data_root / "data", warm_pool=1) as server, server.client() as client:
        created = [
            client.post(
                "/v1/sessions", json={"network": {"deny_out": [f"{DENIED}/32"]}, "runtime": runtime}
            ).json()["session"]
            for _ in range(2)
        ]
        survivor, orphan = (session["session_id"] for session in created)
        before = set(server.interfaces())
        assert {"cv" + survivor[-13:], "cv" + orphan[-13:]} <= before

        server.stop(signal.SIGKILL)
        with sqlite3.connect(server.data_dir / "cove.db") as db:  # a sandbox no row owns
            db.execute("DELETE FROM session_labels WHERE session_id = ?", (orphan,))
            db.execute("DELETE FROM sessions WHERE session_id = ?", (orphan,))
        server.start()

        reached, refused = probe(server, survivor, ("tcp", API, 80), ("tcp", DENIED, 80))
        assert reached == "ok" and refused_fast(refused), (reached, refused)
        shown = client.get(f"/v1/sessions/{survivor}/network").json()
        assert shown["policy"]["deny_out"] == [f"{DENIED}/32"] and shown["denied"]["count"] >= 1

        after = set(server.interfaces())
        assert "cv" + orphan[-13:] not in after, "the orphan's interface went with its sandbox"
        assert not [chain for chain in server.session_chains() if orphan[-13:] in chain]
        gone = before - {"cv" + survivor[-13:], "cv" + orphan[-13:]}
        assert not gone & after, "the crashed server's prepared sandboxes lost their interfaces too"

        assert client.delete(f"/v1/sessions/{survivor}").status_code == 200
        assert server.leftovers() == NOTHING_LEFT
