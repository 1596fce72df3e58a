"""How long context files are kept: AgentBay's `recyclePolicy` (lifecycle and paths).

A session created with a sync of a context sets that context's rule (the latest create wins; the
default `Lifecycle_Forever` removes it). A sweep deletes the files below the rule's paths ("" is
the whole context) that were last changed longer ago than the lifecycle, so data a session stopped
writing goes away on its own, as in AgentBay.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlalchemy import Column, Integer, String, Table, Text, delete, insert, select
from sqlalchemy.engine import Engine

from cove.contexts.storage import StorageBackend, StoredFile
from cove.errors import FileNotFound
from cove.sessions.store import metadata

recycle_table = Table(
    "context_recycle_rules",
    metadata,
    Column("context_id", String(64), primary_key=True),
    Column("days", Integer, nullable=False),
    Column("paths", Text, nullable=False),
)


class RecycleRules:
    """The contexts' lifecycles, in the sessions' database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        recycle_table.create(engine, checkfirst=True)

    def set(self, context_id: str, days: int, paths: tuple[str, ...]) -> None:
        """Keep the context's files below `paths` `days` after their last change (0: forever)."""
        with self.engine.begin() as db:
            db.execute(delete(recycle_table).where(recycle_table.c.context_id == context_id))
            if days:
                db.execute(
                    insert(recycle_table).values(context_id=context_id, days=days, paths=json.dumps(paths))
                )

    def sweep(self, storage: StorageBackend, now: datetime) -> int:
        """Delete the files past their context's lifecycle; answers how many."""
        with self.engine.begin() as db:
            rules = db.execute(select(recycle_table)).all()
        removed = 0
        for rule in rules:
            paths = json.loads(rule.paths)
            cutoff = now - timedelta(days=rule.days)
            for found in _files(storage, rule.context_id, "/"):
                relative = found.path.lstrip("/")
                covered = any(not p or relative == p or relative.startswith(p + "/") for p in paths)
                if covered and found.modified_at < cutoff:
                    storage.delete(rule.context_id, found.path)
                    removed += 1
        return removed


def _files(storage: StorageBackend, context_id: str, parent: str) -> list[StoredFile]:
    try:
        entries = storage.list(context_id, parent)
    except FileNotFound:  # deleted meanwhile
        return []
    found: list[StoredFile] = []
    for entry in entries:
        found.extend(_files(storage, context_id, entry.path) if entry.is_folder else [entry])
    return found
