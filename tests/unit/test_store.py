"""The store on a real SQLite file: label filters, paging, guarded status changes, quota, screens."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from sqlalchemy import update

from cove.sandbox.screen import DEFAULT_SCREEN, Screen
from cove.sessions.store import SessionRecord, Store, sessions_table, utc_now


def record(session_id: str, tenant: str = "t", labels: dict[str, str] | None = None) -> SessionRecord:
    now = utc_now()
    return SessionRecord(session_id, tenant, "img", "RUNNING", 64, 1.0, 32, now, now, labels=labels or {})


def test_labels_filter_and_paging(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'c.db'}")
    for i in range(5):
        assert store.insert_session_within_quota(record(f"s{i}", labels={"k": "v", "i": str(i)}), 10) is None
    store.insert_session_within_quota(record("other", tenant="u", labels={"k": "v"}), 10)
    page, total = store.list_sessions(tenant_id="t", labels={"k": "v"}, offset=2, limit=2)
    assert total == 5 and [r.session_id for r in page] == ["s2", "s3"]
    only, _ = store.list_sessions(tenant_id="t", labels={"k": "v", "i": "4"})
    assert [r.session_id for r in only] == ["s4"] and only[0].labels == {"k": "v", "i": "4"}


def test_guarded_status_and_quota(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'c.db'}")
    store.insert_session_within_quota(record("a"), 1)
    assert store.insert_session_within_quota(record("b"), 1) == 1
    assert store.set_status("a", "DELETING", only_from=["RUNNING"])
    assert not store.set_status("a", "DELETING", only_from=["RUNNING"])
    store.set_status("a", "DELETED", "gone")
    assert store.insert_session_within_quota(record("b"), 1) is None
    deleted = store.get_session("a")
    assert deleted is not None and deleted.status_reason == "gone" and deleted.created_at.tzinfo


def test_the_screen_is_kept_and_a_row_without_one_has_the_default(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'c.db'}")
    store.insert_session_within_quota(replace(record("wide"), screen=Screen(1920, 1080)), 10)
    store.insert_session_within_quota(record("older"), 10)
    with store.engine.begin() as db:  # as a Cove without screen sizes wrote it
        db.execute(
            update(sessions_table)
            .values(screen_width=None, screen_height=None)
            .where(sessions_table.c.session_id == "older")
        )
    wide, older = store.get_session("wide"), store.get_session("older")
    assert wide is not None and wide.screen == Screen(1920, 1080)
    assert older is not None and older.screen == DEFAULT_SCREEN
