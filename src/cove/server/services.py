"""Everything a request may need, built once per server from its settings."""

from __future__ import annotations

from dataclasses import dataclass

from cove.auth import KeyRing
from cove.config import Settings
from cove.contexts.service import ContextService
from cove.contexts.storage import LocalFolderStorage
from cove.contexts.store import ContextStore
from cove.sandbox.images import ImageStore
from cove.sandbox.runtime import RuncRuntime
from cove.server.prometheus import ServerMetrics
from cove.sessions.manager import SessionManager
from cove.sessions.store import Store


@dataclass
class Services:
    """Everything a request may need, built once per server."""

    settings: Settings
    store: Store
    images: ImageStore
    runtime: RuncRuntime
    manager: SessionManager
    keys: KeyRing
    metrics: ServerMetrics
    contexts: ContextService


def build_services(settings: Settings) -> Services:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(settings.database)
    images = ImageStore(settings.data_dir / "images", settings.subordinate_id_start)
    runtime = RuncRuntime(
        settings.data_dir,
        settings.runc,
        settings.subordinate_id_start,
        sandbox_env={
            "COVE_OUTPUT_LIMIT_BYTES": str(settings.output_limit_bytes),
            "COVE_AGENT_IDLE_EXIT_S": str(settings.agent_idle_exit_s),
        },
    )
    manager = SessionManager(settings, store, runtime, images)
    manager.observer = metrics = ServerMetrics(store)
    contexts = ContextService(
        settings, ContextStore(store.engine), LocalFolderStorage(settings.data_dir / "contexts")
    )
    manager.contexts = contexts
    keys = KeyRing(store, settings.api_keys)
    return Services(settings, store, images, runtime, manager, keys, metrics, contexts)
