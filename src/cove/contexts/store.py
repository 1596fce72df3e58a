"""The `contexts` table, in the same database (and SQLAlchemy metadata) as sessions."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    String,
    Table,
    Text,
    UniqueConstraint,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from cove.sessions.store import _aware, context_syncs_table, metadata, sessions_table

CONTEXT_STATES = ("available", "clearing")

contexts_table = Table(
    "contexts",
    metadata,
    Column("context_id", String(64), primary_key=True),
    Column("tenant_id", String(64), nullable=False, index=True),
    Column("name", String(255), nullable=False),
    Column("state", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_used_at", DateTime(timezone=True), nullable=False),
    # Added later, nullable so that older databases gain them in place: set only for a session's
    # internal file-transfer context (contexts/transfers.py), which lists do not show.
    Column("session_id", String(64), nullable=True, index=True),
    Column("tasks", Text, nullable=True),
    UniqueConstraint("tenant_id", "name", name="contexts_tenant_name"),
)


@dataclass(frozen=True)
class ContextRecord:
    context_id: str
    tenant_id: str
    name: str
    state: str
    created_at: datetime
    last_used_at: datetime
    session_id: str | None = None
    """The session whose internal file-transfer context this is; None for the tenant's own contexts."""
    tasks: str | None = None
    """An internal context's file-transfer tasks, as JSON (GetContextInfo's items)."""


class NameTaken(Exception):
    """The tenant already has a context of that name."""


class ContextStore:
    """Database access for contexts; each method is one short transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        contexts_table.create(engine, checkfirst=True)

    def insert(self, record: ContextRecord) -> None:
        try:
            with self.engine.begin() as db:
                db.execute(insert(contexts_table).values(**record.__dict__))
        except IntegrityError:
            raise NameTaken(record.name) from None

    def get(self, tenant_id: str, context_id: str) -> ContextRecord | None:
        return self._one(contexts_table.c.tenant_id == tenant_id, contexts_table.c.context_id == context_id)

    def get_by_id(self, context_id: str) -> ContextRecord | None:
        return self._one(contexts_table.c.context_id == context_id)

    def get_by_name(self, tenant_id: str, name: str) -> ContextRecord | None:
        return self._one(contexts_table.c.tenant_id == tenant_id, contexts_table.c.name == name)

    def get_for_session(self, session_id: str) -> ContextRecord | None:
        return self._one(contexts_table.c.session_id == session_id)

    def sync_paths(self, context_id: str) -> list[str]:
        """The folders sessions sync the context at (or did), and the paths their mappingPolicy names
        (the folder's path on another system, as given), longest first."""
        with self.engine.begin() as db:
            rows = db.execute(
                select(context_syncs_table.c.path, context_syncs_table.c.policy)
                .where(context_syncs_table.c.context_id == context_id)
                .distinct()
            ).all()
        paths = {row.path for row in rows}
        paths.update(mapped for row in rows if (mapped := json.loads(row.policy).get("mapping_path")))
        return sorted(paths, key=len, reverse=True)

    def ended_sessions_contexts(self, live_statuses: Sequence[str]) -> list[str]:
        """Ids of internal contexts whose session is not in one of `live_statuses` (or is gone)."""
        live = select(sessions_table.c.session_id).where(sessions_table.c.status.in_(live_statuses))
        with self.engine.begin() as db:
            rows = db.execute(
                select(contexts_table.c.context_id).where(
                    contexts_table.c.session_id.is_not(None), contexts_table.c.session_id.not_in(live)
                )
            ).all()
        return [row.context_id for row in rows]

    def _one(self, *conditions: Any) -> ContextRecord | None:
        with self.engine.begin() as db:
            row = db.execute(select(contexts_table).where(*conditions)).first()
        return None if row is None else _record(row._mapping)

    def list(self, tenant_id: str, offset: int, limit: int) -> tuple[list[ContextRecord], int]:
        """The tenant's own contexts (not sessions' internal ones), oldest first, and how many in all."""
        mine = (contexts_table.c.tenant_id == tenant_id, contexts_table.c.session_id.is_(None))
        with self.engine.begin() as db:
            total = int(db.execute(select(func.count()).where(*mine)).scalar_one())
            rows = db.execute(
                select(contexts_table)
                .where(*mine)
                .order_by(contexts_table.c.created_at, contexts_table.c.context_id)
                .offset(offset)
                .limit(limit)
            ).all()
        return [_record(row._mapping) for row in rows], total

    def change(self, context_id: str, **values: Any) -> None:
        """Set columns of one context (name, state, last_used_at, tasks)."""
        try:
            with self.engine.begin() as db:
                db.execute(
                    update(contexts_table).where(contexts_table.c.context_id == context_id).values(**values)
                )
        except IntegrityError:
            raise NameTaken(str(values.get("name", ""))) from None

    def delete(self, context_id: str) -> None:
        with self.engine.begin() as db:
            db.execute(delete(contexts_table).where(contexts_table.c.context_id == context_id))


def _record(row: Any) -> ContextRecord:
    return ContextRecord(
        context_id=row["context_id"],
        tenant_id=row["tenant_id"],
        name=row["name"],
        state=row["state"],
        created_at=_aware(row["created_at"]),
        last_used_at=_aware(row["last_used_at"]),
        session_id=row["session_id"],
        tasks=row["tasks"],
    )
