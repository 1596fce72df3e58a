"""Everything a request may need, built once per server from its settings."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from cove.auth import KeyRing
from cove.config import Settings
from cove.contexts.service import ContextService
from cove.contexts.storage import LocalFolderStorage, StorageBackend
from cove.contexts.store import ContextStore
from cove.contexts.transfers import FileTransfers
from cove.sandbox.images import ImageStore, image_store
from cove.sandbox.runtime import RuncRuntime
from cove.sandbox.session_network import NetworkSettings
from cove.server.prometheus import ServerMetrics
from cove.sessions.manager import SessionManager
from cove.sessions.store import Store

log = logging.getLogger(__name__)


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
    transfers: FileTransfers


def context_storage(settings: Settings) -> StorageBackend:
    """The storage backend `COVE_STORAGE_BACKEND` names; an S3 bucket is checked now, not at first use."""
    if settings.storage_backend == "local":
        local = LocalFolderStorage(settings.data_dir / "contexts")
        if removed := local.remove_unfinished_uploads():
            log.warning("removed %d unfinished upload(s) that a crash left in the contexts", removed)
        return local
    if settings.storage_backend != "s3":
        raise ValueError(f"setting storage_backend: {settings.storage_backend!r} is not 'local' or 's3'")
    if not settings.s3_bucket:
        raise ValueError("setting s3_bucket: the s3 storage backend needs a bucket (COVE_S3_BUCKET)")
    from cove.contexts.s3_storage import S3Storage, s3_client  # boto3 only where it is used

    client = s3_client(
        settings.s3_endpoint_url,
        settings.s3_region,
        settings.s3_access_key_id,
        settings.s3_secret_access_key,
        path_style=settings.s3_path_style,
    )
    storage = S3Storage(client, settings.s3_bucket, settings.s3_prefix)
    storage.check()
    return storage


def network_settings(settings: Settings) -> NetworkSettings:
    return NetworkSettings.parse(
        default_mode=settings.network_default,
        egress_allowed=settings.network_egress_allowed,
        allow=settings.egress_allow,
        open_ranges=settings.egress_open,
        subnet=settings.session_subnet,
        dns_upstream=settings.dns_upstream,
        rate_mbit=settings.egress_rate_mbit,
        max_connections=settings.egress_max_connections,
    )


def build_services(settings: Settings) -> Services:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(settings.database)
    images = image_store(settings)
    storage = context_storage(settings)  # a missing bucket stops the server before any sandbox work
    runtime = RuncRuntime(
        settings.data_dir,
        settings.runc,
        settings.subordinate_id_start,
        sandbox_env={
            "COVE_OUTPUT_LIMIT_BYTES": str(settings.output_limit_bytes),
            "COVE_AGENT_IDLE_EXIT_S": str(settings.agent_idle_exit_s),
        },
        identity_registry=settings.identity_registry,
        capacity=settings.max_sandboxes,
        sessions_volume_mb=settings.sessions_volume_mb,
        network=network_settings(settings),
        runsc=settings.runsc,
    )
    manager = SessionManager(settings, store, runtime, images)
    manager.observer = metrics = ServerMetrics(store)
    contexts = ContextService(settings, ContextStore(store.engine), storage)
    manager.contexts = contexts
    keys = KeyRing(store, settings.api_keys)
    transfers = FileTransfers(manager, contexts)
    return Services(settings, store, images, runtime, manager, keys, metrics, contexts, transfers)
