"""Server settings: defaults that work with no configuration, then a TOML file, then COVE_* variables."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from cove.contexts.transfer_limits import TransferLimits

DEFAULT_DATA_DIR = "/var/lib/cove"
_BOOLEANS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False}
"""How a true/false setting may be written (`bool("false")` would be True)."""


def _setting(default: Any, help: str, *, secret: bool = False) -> Any:
    """A setting; a `secret` one is left out of the settings' repr, so it never reaches a log."""
    return field(default=default, repr=not secret, metadata={"help": help})


@dataclass(frozen=True)
class Settings:
    """Every knob of a Cove server. Each field `name` is read from the variable COVE_NAME."""

    data_dir: Path = _setting(Path(DEFAULT_DATA_DIR), "data directory: database, images, session state")
    host: str = _setting("127.0.0.1", "address the server listens on")
    port: int = _setting(9000, "port the server listens on")
    database_url: str = _setting("", "SQLAlchemy URL; empty means SQLite at DATA_DIR/cove.db")
    api_keys: str = _setting("", "comma-separated API keys accepted besides those in the database")
    public_url: str = _setting("", "base URL clients reach the server at; default http://HOST:PORT")
    tls_cert_file: str = _setting(
        "", "certificate chain (PEM) the API port serves HTTPS with, e.g. from 'cove e2b-cert'; empty: HTTP"
    )
    tls_key_file: str = _setting("", "private key (PEM) of TLS_CERT_FILE")
    e2b_domain: str = _setting(
        "",
        "E2B's domain for this server, with the port clients use: sandboxes at {port}-{id}.DOMAIN, "
        "the API at api.DOMAIN; empty: cove.localhost:PORT",
    )
    link_port: int = _setting(
        0, "port links to sessions are served on, an origin apart from the API's; 0: the API port + 1"
    )
    link_public_url: str = _setting("", "base URL links are given at; default http://HOST:LINK_PORT")
    session_quota: int = _setting(50, "live sessions allowed per API key")
    auto_resume: bool = _setting(
        False, "a tool call (or transfer) to a PAUSED session resumes it first instead of answering 409"
    )
    snapshot_quota_mb: int = _setting(
        20480, "disk the snapshots of one API key may take, in MiB; past it a snapshot answers 429"
    )
    tenant_tool_calls: int = _setting(32, "tool calls an API key may have running at once; past it, 429")
    default_image: str = _setting("linux_latest", "image used when a create names none")
    images_dir: str = _setting("", "where images are stored; empty means DATA_DIR/images")
    image_cache_dir: str = _setting(
        "", "downloaded packages kept for 'cove image build'; empty means DATA_DIR/image-cache"
    )
    debian_mirror: str = _setting("", "Debian mirror for 'cove image build'; empty means the host's")
    debian_suite: str = _setting("", "Debian suite for 'cove image build'; empty means the host's")
    default_memory_mb: int = _setting(1024, "memory limit of a session, MiB")
    default_cpus: float = _setting(1.0, "CPU limit of a session, cores")
    default_pids: int = _setting(512, "process limit of a session")
    default_disk_mb: int = _setting(
        10240, "disk limit of a session, MiB: what it writes, files counted by their metadata"
    )
    max_memory_mb: int = _setting(8192, "largest memory limit a create may ask for, MiB")
    max_cpus: float = _setting(float(os.cpu_count() or 1), "largest CPU limit a create may ask for")
    max_pids: int = _setting(4096, "largest process limit a create may ask for")
    max_disk_mb: int = _setting(102400, "largest disk limit a create may ask for, MiB")
    sessions_volume_mb: int = _setting(
        0,
        "size of DATA_DIR/sessions.btrfs, the sparse file sessions live in when DATA_DIR is not on "
        "btrfs, MiB, set when it is made; 0: 90% of the free space there",
    )
    warm_pool: int = _setting(2, "sandboxes kept prepared for creates with the default image and limits")
    warm_pool_max: int = _setting(
        0,
        "most sandboxes the warm pool grows to while creates find it empty (one more per miss, one "
        "less after a minute without one); 0: it stays at COVE_WARM_POOL",
    )
    runc: str = _setting("runc", "OCI runtime binary (runc; crun takes the same commands)")
    runsc: str = _setting("runsc", "gVisor's runsc binary, which runs sessions created with runtime gvisor")
    default_runtime: str = _setting("runc", "runtime of a session whose create names none: runc or gvisor")
    allowed_runtimes: str = _setting(
        "runc,gvisor", "comma-separated runtimes creates may ask for (runc, gvisor); others get 400"
    )
    subordinate_id_start: int = _setting(100000, "first host uid/gid that sandbox uid 0 maps to")
    identity_registry: Path = _setting(
        Path("/run/cove/identities"),
        "where every Cove server on this host records the host uid each session holds",
    )
    max_sandboxes: int = _setting(
        2000, "sandboxes this server runs at most (all tenants); past it, creates get 503"
    )
    output_limit_bytes: int = _setting(10 * 1024 * 1024, "command output kept per stream; the rest is cut")
    max_command_timeout_ms: int = _setting(3_600_000, "longest timeout_ms a command may ask for")
    default_idle_timeout_s: int = _setting(
        0, "a session idle this long is deleted (or paused: IDLE_ACTION) unless it asks otherwise; 0: never"
    )
    idle_action: str = _setting(
        "delete",
        "what becomes of a session idle past its idle timeout unless it asks otherwise: delete, or "
        "pause (a gvisor one is checkpointed, which frees its memory); a paused session is not idle",
    )
    default_max_lifetime_s: int = _setting(
        0, "a session is deleted this long after its creation unless it asks otherwise; 0: never"
    )
    reconcile_interval_s: float = _setting(10.0, "how often to look for dead sandboxes and expired sessions")
    agent_idle_exit_s: float = _setting(60.0, "a session's tool agent leaves after this long without calls")
    storage_backend: str = _setting("local", "where context files live: local (DATA_DIR/contexts) or s3")
    s3_endpoint_url: str = _setting("", "S3-compatible endpoint, such as http://minio:9000; empty: AWS S3")
    s3_bucket: str = _setting("", "bucket of the s3 storage backend (it must exist)")
    s3_region: str = _setting("us-east-1", "region the s3 storage backend signs requests for")
    s3_access_key_id: str = _setting("", "access key of the s3 backend; empty: boto3's own (AWS_*, roles)")
    s3_secret_access_key: str = _setting("", "secret of that access key", secret=True)
    s3_prefix: str = _setting("contexts", "key prefix of context files in the bucket")
    s3_path_style: bool = _setting(False, "address the bucket in the path (most self-hosted S3 servers)")
    max_sync_file_bytes: int = _setting(
        4 * 1024**3,
        "largest file a transfer from a sandbox (context upload, OSS upload) moves, bytes; larger "
        "ones are left out and reported",
    )
    max_sync_bytes: int = _setting(
        16 * 1024**3, "most bytes one transfer from a sandbox may send; past it the transfer fails"
    )
    sync_timeout_s: float = _setting(
        3600.0, "time one transfer from a sandbox may take in all, seconds; past it the transfer fails"
    )
    oss_private_networks: bool = _setting(
        False, "let OSS tools reach loopback, private and link-local addresses (an in-house store)"
    )
    max_request_body_bytes: int = _setting(
        16 * 1024 * 1024,
        "largest request body, bytes, but for streamed uploads (files, context files, links) and "
        "the AgentBay RPC surface, which have their own limits; past it: 413",
    )
    request_body_timeout_s: float = _setting(
        60.0, "time a request body may take to arrive, seconds; a streamed upload: the longest pause"
    )
    transfer_stall_timeout_s: float = _setting(
        60.0, "a streamed file transfer fails when the sandbox or the client moves no byte this long"
    )
    network_default: str = _setting("egress", "network of a session whose create names none: egress or none")
    network_egress_allowed: bool = _setting(
        True, "let sessions reach the network at all; false: every session has only loopback"
    )
    egress_allow: str = _setting(
        "",
        "comma-separated CIDRs and domain names (*.example.com) that are the only destinations any "
        "session may reach, whatever its policy; empty: no such list",
    )
    egress_open: str = _setting(
        "",
        "comma-separated always-denied ranges opened to sessions (e.g. 10.0.0.0/8 for an in-house "
        "network); the host and other sessions stay closed",
    )
    session_subnet: str = _setting("10.203.0.0/16", "IPv4 network sessions take their addresses from")
    dns_upstream: str = _setting(
        "", "DNS server (IP or IP:PORT) that sessions' queries are forwarded to; empty: the host's"
    )
    egress_rate_mbit: float = _setting(0.0, "bandwidth out of one session, Mbit/s; 0: unlimited")
    egress_max_connections: int = _setting(1024, "connections one session may have open at once")
    trusted_proxies: str = _setting(
        "", "comma-separated addresses of reverse proxies whose X-Forwarded-For is believed; empty: none"
    )

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'cove.db'}"

    @property
    def images_path(self) -> Path:
        return Path(self.images_dir) if self.images_dir else self.data_dir / "images"

    @property
    def image_cache_path(self) -> Path:
        return Path(self.image_cache_dir) if self.image_cache_dir else self.data_dir / "image-cache"

    @property
    def transfer_limits(self) -> TransferLimits:
        return TransferLimits(
            self.max_sync_file_bytes, self.max_sync_bytes, self.sync_timeout_s, self.data_dir / "tmp"
        )

    @property
    def base_url(self) -> str:
        scheme = "https" if self.tls_cert_file else "http"
        return (self.public_url or f"{scheme}://{self.host}:{self.port}").rstrip("/")

    @property
    def e2b_public_domain(self) -> str:
        """The domain E2B's SDK is told (the `domain` of a sandbox), from which it makes hosts."""
        return self.e2b_domain or f"cove.localhost:{self.port}"

    @property
    def link_listen_port(self) -> int:
        """The port of the link listener: never the API's, so links never share the API's origin."""
        port = self.link_port or self.port + 1
        if port == self.port:
            raise ValueError(f"setting link_port: {port} is the API's port; links need a port of their own")
        return port

    @property
    def link_base_url(self) -> str:
        return (self.link_public_url or f"http://{self.host}:{self.link_listen_port}").rstrip("/")


def _convert(name: str, raw: Any, target: Any) -> Any:
    try:
        if isinstance(target, Path):
            return Path(raw)
        if isinstance(target, bool) and isinstance(raw, str):
            return _BOOLEANS[raw.strip().lower()]
        return type(target)(raw)
    except (TypeError, ValueError, KeyError) as exc:
        raise ValueError(f"setting {name}: cannot read {raw!r} as {type(target).__name__}") from exc


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Defaults, then the TOML file, then COVE_* environment variables, then explicit overrides."""
    settings = Settings()
    values: dict[str, Any] = {}
    path = config_file or (Path(os.environ["COVE_CONFIG"]) if os.environ.get("COVE_CONFIG") else None)
    if path is not None:
        with path.open("rb") as handle:
            values.update(tomllib.load(handle))
    known = {f.name: getattr(settings, f.name) for f in fields(Settings)}
    for name in known:
        env = os.environ.get(f"COVE_{name.upper()}")
        if env is not None:
            values[name] = env
    values.update({k: v for k, v in overrides.items() if v is not None})
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"unknown setting(s): {', '.join(unknown)}")
    converted = {name: _convert(name, raw, known[name]) for name, raw in values.items()}
    return replace(settings, **converted)


def settings_help() -> str:
    """One line per setting, for `cove serve --help`."""
    lines = []
    for f in fields(Settings):
        lines.append(f"COVE_{f.name.upper():<24} {f.metadata['help']} (default: {f.default!s})")
    return "\n".join(lines)
