"""Persistent state of sessions and API keys, through SQLAlchemy (SQLite by default, PostgreSQL by URL).

Labels live in their own table so that filtering by labels and paging are done by the database.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    event,
    func,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, Engine, RowMapping

from cove.sandbox.screen import DEFAULT_SCREEN, Screen
from cove.sessions.changes import SessionChanges

metadata = MetaData()

sessions_table = Table(
    "sessions",
    metadata,
    Column("session_id", String(64), primary_key=True),
    Column("tenant_id", String(64), nullable=False, index=True),
    Column("image_id", String(64), nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("status_reason", Text, nullable=False, default=""),
    Column("memory_mb", Integer, nullable=False),
    Column("cpus", Float, nullable=False),
    Column("pids", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # Added after the first release: nullable, so that older databases gain them in place (migrate).
    Column("idle_timeout_s", Integer, nullable=True),
    Column("max_lifetime_s", Integer, nullable=True),
    Column("last_active_at", DateTime(timezone=True), nullable=True),
    Column("disk_mb", Integer, nullable=True),
    Column("screen_width", Integer, nullable=True),
    Column("screen_height", Integer, nullable=True),
    Column("runtime", String(16), nullable=True),
    Column("idle_action", String(16), nullable=True),
)

context_syncs_table = Table(
    "session_context_syncs",
    metadata,
    Column("session_id", String(64), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("context_id", String(64), nullable=False),
    Column("path", Text, nullable=False),
    Column("policy", Text, nullable=False),
    Column("tasks", Text, nullable=False, default="[]"),
    Column("bound_at", DateTime(timezone=True), nullable=True),  # added later: nullable (migrate)
)
"""The contexts a session syncs (contexts/sync.py): policy is the checked policy as JSON, tasks the
JSON list of its download and upload tasks, as GetContextInfo reports them; bound_at is when the
sync was added (at create, or by a bind to the running session)."""

labels_table = Table(
    "session_labels",
    metadata,
    Column(
        "session_id",
        String(64),
        ForeignKey("sessions.session_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("key", String(128), primary_key=True),
    Column("value", String(256), nullable=False, index=True),
)

snapshots_table = Table(
    "snapshots",
    metadata,
    Column("snapshot_id", String(64), primary_key=True),
    Column("tenant_id", String(64), nullable=False, index=True),
    Column("name", String(128), nullable=False),
    Column("source_session_id", String(64), nullable=False),
    Column("image_id", String(64), nullable=False),
    Column("memory_mb", Integer, nullable=False),
    Column("cpus", Float, nullable=False),
    Column("pids", Integer, nullable=False),
    Column("disk_mb", Integer, nullable=True),
    Column("size_bytes", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
"""Named snapshots of gvisor sessions (checkpoint and files, under DATA_DIR/snapshots/<tenant>/<id>)."""

api_keys_table = Table(
    "api_keys",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("name", String(128), nullable=False, default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


def utc_now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every time in Cove is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class SessionRecord:
    """One row of the sessions table, with its labels."""

    session_id: str
    tenant_id: str
    image_id: str
    status: str
    memory_mb: int
    cpus: float
    pids: int
    created_at: datetime
    updated_at: datetime
    status_reason: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    idle_timeout_s: int = 0
    """0: never released for idleness."""
    max_lifetime_s: int = 0
    """0: no limit."""
    last_active_at: datetime | None = None
    """The last call that used the session (tool calls, transfers, keep-alive); None: its creation."""
    disk_mb: int | None = None
    """None: made by a Cove without disk limits."""
    screen: Screen = DEFAULT_SCREEN
    """The desktop's size; a row without one is from a Cove whose screens were all the default."""
    runtime: str = "runc"
    """What runs the sandbox: runc or gvisor; a row without one is from a Cove that had only runc."""
    idle_action: str = "delete"
    """What becomes of it once idle past its idle timeout: "delete", or "pause"."""

    @property
    def active_at(self) -> datetime:
        return self.last_active_at or self.created_at


@dataclass(frozen=True)
class ApiKeyRecord:
    tenant_id: str
    name: str
    created_at: datetime


@dataclass
class SnapshotRecord:
    snapshot_id: str
    tenant_id: str
    name: str
    source_session_id: str
    image_id: str
    memory_mb: int
    cpus: float
    pids: int
    disk_mb: int | None
    size_bytes: int
    created_at: datetime


class Store:
    """All database access of Cove; every method is one short transaction."""

    def __init__(self, url: str) -> None:
        self.engine: Engine = create_engine(url, pool_pre_ping=True)
        self.changes = SessionChanges()
        """Woken after every write to a session (status, labels, lifetime, a new or removed row)."""
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        metadata.create_all(self.engine)
        self._add_missing_columns()

    def _add_missing_columns(self) -> None:
        """Bring a database made by an older Cove up to date: its tables lack the newer, nullable columns."""
        for table in metadata.sorted_tables:
            present = {column["name"] for column in inspect(self.engine).get_columns(table.name)}
            for column in table.columns:
                if column.name not in present:
                    kind = column.type.compile(dialect=self.engine.dialect)
                    with self._transaction() as db:
                        db.execute(text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}'))

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        with self.engine.begin() as connection:
            yield connection

    # Sessions

    def insert_session_within_quota(self, record: SessionRecord, quota: int) -> int | None:
        """Insert the row unless its tenant already has `quota` live sessions; then return that count.

        Callers serialise this per server; the count and insert share one transaction.
        """
        with self._transaction() as db:
            query = select(func.count()).where(
                sessions_table.c.tenant_id == record.tenant_id, sessions_table.c.status != "DELETED"
            )
            live = int(db.execute(query).scalar_one())
            if live >= quota:
                return live
            db.execute(insert(sessions_table).values(**_session_columns(record)))
            _write_labels(db, record.session_id, record.labels)
        self.changes.note()
        return None

    def get_session(self, session_id: str) -> SessionRecord | None:
        with self._transaction() as db:
            row = db.execute(select(sessions_table).where(sessions_table.c.session_id == session_id)).first()
            if row is None:
                return None
            return _record(row._mapping, _read_labels(db, [session_id])[session_id])

    def list_sessions(
        self,
        *,
        tenant_id: str | None = None,
        statuses: list[str] | None = None,
        labels: Mapping[str, str] | None = None,
        image_id: str | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> tuple[list[SessionRecord], int]:
        """Sessions matching every filter, oldest first, and how many match in all."""
        conditions: list[Any] = []
        if tenant_id is not None:
            conditions.append(sessions_table.c.tenant_id == tenant_id)
        if image_id is not None:
            conditions.append(sessions_table.c.image_id == image_id)
        if statuses is not None:
            conditions.append(sessions_table.c.status.in_(statuses))
        for key, value in (labels or {}).items():
            conditions.append(
                sessions_table.c.session_id.in_(
                    select(labels_table.c.session_id).where(
                        labels_table.c.key == key, labels_table.c.value == value
                    )
                )
            )
        with self._transaction() as db:
            total = int(
                db.execute(select(func.count()).select_from(sessions_table).where(*conditions)).scalar_one()
            )
            query = (
                select(sessions_table)
                .where(*conditions)
                .order_by(sessions_table.c.created_at, sessions_table.c.session_id)
                .offset(offset)
                .limit(limit)
            )
            rows = db.execute(query).all()
            labels_by_id = _read_labels(db, [row.session_id for row in rows])
            return [_record(row._mapping, labels_by_id[row.session_id]) for row in rows], total

    def set_status(
        self, session_id: str, status: str, reason: str = "", *, only_from: list[str] | None = None
    ) -> bool:
        """Move a session to `status`; with `only_from`, only if its status is one of those.

        Returns whether a row changed, so concurrent callers learn who won a transition.
        """
        query = update(sessions_table).where(sessions_table.c.session_id == session_id)
        if only_from is not None:
            query = query.where(sessions_table.c.status.in_(only_from))
        with self._transaction() as db:
            changed = db.execute(
                query.values(status=status, status_reason=reason, updated_at=utc_now())
            ).rowcount
        if changed:
            self.changes.note()
        return changed > 0

    def count_by_status(self) -> dict[str, int]:
        """How many sessions there are in each status, every tenant together."""
        with self._transaction() as db:
            query = select(sessions_table.c.status, func.count()).group_by(sessions_table.c.status)
            return {status: int(count) for status, count in db.execute(query).all()}

    def mark_active(self, session_id: str, moment: datetime) -> None:
        """Record that the session was used, which restarts its idle timeout."""
        with self._transaction() as db:
            db.execute(
                update(sessions_table)
                .where(sessions_table.c.session_id == session_id)
                .values(last_active_at=moment)
            )

    def set_max_lifetime(self, session_id: str, max_lifetime_s: int) -> None:
        with self._transaction() as db:
            db.execute(
                update(sessions_table)
                .where(sessions_table.c.session_id == session_id)
                .values(max_lifetime_s=max_lifetime_s, updated_at=utc_now())
            )
        self.changes.note()

    def replace_labels(self, session_id: str, labels: Mapping[str, str]) -> None:
        with self._transaction() as db:
            db.execute(delete(labels_table).where(labels_table.c.session_id == session_id))
            _write_labels(db, session_id, labels)
            db.execute(
                update(sessions_table)
                .where(sessions_table.c.session_id == session_id)
                .values(updated_at=utc_now())
            )
        self.changes.note()

    def delete_session_row(self, session_id: str) -> None:
        """Forget a session entirely: only for a create that failed before anyone saw it."""
        with self._transaction() as db:
            db.execute(delete(labels_table).where(labels_table.c.session_id == session_id))
            db.execute(delete(context_syncs_table).where(context_syncs_table.c.session_id == session_id))
            db.execute(delete(sessions_table).where(sessions_table.c.session_id == session_id))
        self.changes.note()

    # Context syncs

    def add_context_syncs(self, session_id: str, syncs: list[dict[str, Any]], first: int = 0) -> None:
        """Note a session's context syncs (dicts of context_id, path, policy and tasks, as JSON), at
        positions from `first` on."""
        if syncs:
            now = utc_now()
            with self._transaction() as db:
                db.execute(
                    insert(context_syncs_table),
                    [
                        {"session_id": session_id, "position": first + n, "bound_at": now, **sync}
                        for n, sync in enumerate(syncs)
                    ],
                )

    def remove_context_syncs(self, session_id: str, first: int) -> None:
        """Forget the session's syncs from position `first` on (a bind that failed)."""
        with self._transaction() as db:
            db.execute(
                delete(context_syncs_table).where(
                    context_syncs_table.c.session_id == session_id, context_syncs_table.c.position >= first
                )
            )

    def context_syncs(self, session_id: str) -> list[dict[str, Any]]:
        with self._transaction() as db:
            rows = db.execute(
                select(context_syncs_table)
                .where(context_syncs_table.c.session_id == session_id)
                .order_by(context_syncs_table.c.position)
            ).all()
        return [{**row._mapping, "bound_at": row.bound_at and _aware(row.bound_at)} for row in rows]

    def set_sync_tasks(self, session_id: str, position: int, tasks: str) -> None:
        with self._transaction() as db:
            _write_tasks(db, session_id, position, tasks)

    def context_syncs_of(self, statuses: list[str]) -> list[dict[str, Any]]:
        """The context syncs of every session in one of `statuses`, with its `status` and `created_at`."""
        query = (
            select(context_syncs_table, sessions_table.c.status, sessions_table.c.created_at)
            .join(sessions_table, sessions_table.c.session_id == context_syncs_table.c.session_id)
            .where(sessions_table.c.status.in_(statuses))
            .order_by(context_syncs_table.c.session_id, context_syncs_table.c.position)
        )
        with self._transaction() as db:
            return [dict(row._mapping) for row in db.execute(query).all()]

    def begin_release(
        self, session_id: str, reason: str, tasks: dict[int, str], only_from: list[str]
    ) -> bool:
        """Move a session to DELETING (keeping `reason` for its end) and note its pending uploads
        (`tasks`, by position), in one transaction: a crash after it leaves both or neither."""
        with self._transaction() as db:
            changed = db.execute(
                update(sessions_table)
                .where(sessions_table.c.session_id == session_id, sessions_table.c.status.in_(only_from))
                .values(status="DELETING", status_reason=reason, updated_at=utc_now())
            )
            if changed.rowcount == 0:
                return False
            for position, written in tasks.items():
                _write_tasks(db, session_id, position, written)
            return True

    # Snapshots

    def insert_snapshot(self, record: SnapshotRecord) -> None:
        with self._transaction() as db:
            db.execute(insert(snapshots_table).values(**dataclasses.asdict(record)))

    def snapshot_bytes(self, tenant_id: str) -> int:
        """The disk the tenant's snapshots take."""
        with self._transaction() as db:
            query = select(func.coalesce(func.sum(snapshots_table.c.size_bytes), 0)).where(
                snapshots_table.c.tenant_id == tenant_id
            )
            return int(db.execute(query).scalar_one())

    def get_snapshot(self, snapshot_id: str) -> SnapshotRecord | None:
        with self._transaction() as db:
            query = select(snapshots_table).where(snapshots_table.c.snapshot_id == snapshot_id)
            row = db.execute(query).mappings().first()
            return None if row is None else _snapshot(row)

    def list_snapshots(self, tenant_id: str) -> list[SnapshotRecord]:
        with self._transaction() as db:
            query = (
                select(snapshots_table)
                .where(snapshots_table.c.tenant_id == tenant_id)
                .order_by(snapshots_table.c.created_at)
            )
            return [_snapshot(row) for row in db.execute(query).mappings().all()]

    def delete_snapshot_row(self, snapshot_id: str) -> None:
        with self._transaction() as db:
            db.execute(delete(snapshots_table).where(snapshots_table.c.snapshot_id == snapshot_id))

    # API keys

    def add_api_key(self, tenant_id: str, name: str) -> None:
        with self._transaction() as db:
            db.execute(insert(api_keys_table).values(tenant_id=tenant_id, name=name, created_at=utc_now()))

    def has_api_key(self, tenant_id: str) -> bool:
        with self._transaction() as db:
            query = select(api_keys_table.c.tenant_id).where(api_keys_table.c.tenant_id == tenant_id)
            return db.execute(query).first() is not None

    def list_api_keys(self) -> list[ApiKeyRecord]:
        with self._transaction() as db:
            rows = db.execute(select(api_keys_table).order_by(api_keys_table.c.created_at)).all()
            return [ApiKeyRecord(row.tenant_id, row.name, _aware(row.created_at)) for row in rows]


def _snapshot(row: RowMapping) -> SnapshotRecord:
    values = dict(row)
    values["created_at"] = _aware(values["created_at"])
    return SnapshotRecord(**values)


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # In WAL mode NORMAL survives any crash of the server; only a power cut may lose the last commits.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _session_columns(record: SessionRecord) -> dict[str, Any]:
    return {
        "session_id": record.session_id,
        "tenant_id": record.tenant_id,
        "image_id": record.image_id,
        "status": record.status,
        "status_reason": record.status_reason,
        "memory_mb": record.memory_mb,
        "cpus": record.cpus,
        "pids": record.pids,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "idle_timeout_s": record.idle_timeout_s,
        "max_lifetime_s": record.max_lifetime_s,
        "last_active_at": record.last_active_at,
        "disk_mb": record.disk_mb,
        "screen_width": record.screen.width,
        "screen_height": record.screen.height,
        "runtime": record.runtime,
        "idle_action": record.idle_action,
    }


def _write_labels(db: Connection, session_id: str, labels: Mapping[str, str]) -> None:
    if labels:
        db.execute(
            insert(labels_table),
            [{"session_id": session_id, "key": k, "value": v} for k, v in labels.items()],
        )


def _read_labels(db: Connection, session_ids: list[str]) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {session_id: {} for session_id in session_ids}
    if session_ids:
        query = select(labels_table).where(labels_table.c.session_id.in_(session_ids))
        for row in db.execute(query):
            found[row.session_id][row.key] = row.value
    return found


def _record(row: RowMapping, labels: dict[str, str]) -> SessionRecord:
    return SessionRecord(
        session_id=row["session_id"],
        tenant_id=row["tenant_id"],
        image_id=row["image_id"],
        status=row["status"],
        status_reason=row["status_reason"],
        memory_mb=row["memory_mb"],
        cpus=row["cpus"],
        pids=row["pids"],
        created_at=_aware(row["created_at"]),
        updated_at=_aware(row["updated_at"]),
        labels=labels,
        idle_timeout_s=row["idle_timeout_s"] or 0,
        max_lifetime_s=row["max_lifetime_s"] or 0,
        last_active_at=_aware(row["last_active_at"]) if row["last_active_at"] else None,
        disk_mb=row["disk_mb"],
        screen=Screen(row["screen_width"], row["screen_height"]) if row["screen_width"] else DEFAULT_SCREEN,
        runtime=row["runtime"] or "runc",
        idle_action=row["idle_action"] or "delete",
    )


def _write_tasks(db: Connection, session_id: str, position: int, tasks: str) -> None:
    db.execute(
        update(context_syncs_table)
        .where(context_syncs_table.c.session_id == session_id, context_syncs_table.c.position == position)
        .values(tasks=tasks)
    )
