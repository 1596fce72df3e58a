"""Sessions' internal file-transfer contexts on a real SQLite file: made once, hidden from lists, and
gone with their session; an older database gains the columns they need."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from cove.config import Settings
from cove.contexts.service import ContextService
from cove.contexts.storage import LocalFolderStorage
from cove.contexts.store import ContextStore
from cove.sessions.store import SessionRecord, Store, utc_now

LIVE = ["RUNNING", "PAUSED"]


def service_on(data_dir: Path) -> tuple[Store, ContextService]:
    store = Store(f"sqlite:///{data_dir / 'cove.db'}")
    settings = Settings(data_dir=data_dir)
    return store, ContextService(settings, ContextStore(store.engine), LocalFolderStorage(data_dir / "ctx"))


def add_session(store: Store, session_id: str) -> None:
    now = utc_now()
    record = SessionRecord(session_id, "t", "img", "RUNNING", 64, 1.0, 32, now, now)
    assert store.insert_session_within_quota(record, 10) is None


def test_made_once_hidden_and_gone_with_the_session(tmp_path: Path) -> None:
    store, contexts = service_on(tmp_path)
    add_session(store, "s-live")
    add_session(store, "s-ended")
    own = contexts.create("t", "mine")
    live = contexts.session_context("t", "s-live")
    assert contexts.session_context("t", "s-live") == live, "one per session"
    ended = contexts.session_context("t", "s-ended")
    contexts.storage.put(ended.context_id, "tmp/f.bin", [b"x"])
    assert [found.context_id for found in contexts.list("t").items] == [own.context_id]
    assert contexts.get("t", live.context_id).session_id == "s-live"

    store.set_status("s-ended", "DELETED", "gone")
    contexts.sweep_session_contexts(LIVE)
    assert contexts.store.get_by_id(ended.context_id) is None
    assert not (tmp_path / "ctx" / ended.context_id).exists()
    assert contexts.store.get_by_id(live.context_id) is not None
    contexts.drop_session_context("s-live")
    assert contexts.store.get_by_id(live.context_id) is None
    assert contexts.store.get_by_id(own.context_id) is not None, "the key's own contexts stay"
    store.close()


def test_an_older_database_gains_the_columns(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "cove.db") as db:
        db.execute(
            "CREATE TABLE contexts (context_id VARCHAR(64) PRIMARY KEY, tenant_id VARCHAR(64) NOT NULL, "
            "name VARCHAR(255) NOT NULL, state VARCHAR(16) NOT NULL, created_at DATETIME NOT NULL, "
            "last_used_at DATETIME NOT NULL, UNIQUE (tenant_id, name))"
        )
    store, contexts = service_on(tmp_path)
    add_session(store, "s-1")
    assert contexts.session_context("t", "s-1").session_id == "s-1"
    store.close()
