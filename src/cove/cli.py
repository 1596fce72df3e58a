"""The `cove` command: run a server, manage keys and images, and drive sessions through the SDK."""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from cove.config import DEFAULT_DATA_DIR, Settings, load_settings, settings_help


def render_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Left-aligned columns, wide enough for their longest cell."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    )


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


@click.group()
@click.version_option(package_name="cove")
def main() -> None:
    """Cove: self-hosted sandboxes for AI agents."""


# Server side


@main.command(
    epilog="Settings, also read from a TOML file given by --config or COVE_CONFIG:\n\n" + settings_help()
)
@click.option("--host", default=None, help="address to listen on [COVE_HOST]")
@click.option("--port", type=int, default=None, help="port to listen on [COVE_PORT]")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="[COVE_DATA_DIR]")
@click.option("--config", "config_file", type=click.Path(path_type=Path, exists=True), default=None)
@click.option("--log-level", default="info", show_default=True)
def serve(
    host: str | None, port: int | None, data_dir: Path | None, config_file: Path | None, log_level: str
) -> None:
    """Run the Cove server (needs root: it runs runc and mounts overlays)."""
    import uvicorn

    from cove.server.app import create_app

    settings = load_settings(config_file, host=host, port=port, data_dir=data_dir)
    uvicorn.run(create_app(settings), log_level=log_level, **_listening(settings))


def _listening(settings: Settings) -> dict[str, Any]:
    """uvicorn's address, its certificate if it serves HTTPS, and which proxies' X-Forwarded-For it
    believes (`proxy_options`)."""
    from cove.server.link_listener import proxy_options

    tls = {"ssl_certfile": settings.tls_cert_file, "ssl_keyfile": settings.tls_key_file or None}
    return {
        "host": settings.host,
        "port": settings.port,
        **(tls if settings.tls_cert_file else {}),
        **proxy_options(settings),
    }


@main.command("e2b-cert")
@click.option(
    "--domain", default="cove.localhost", show_default=True, help="E2B's base domain, two labels or more"
)
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="[COVE_DATA_DIR]")
def e2b_cert(domain: str, data_dir: Path | None) -> None:
    """Make a local CA (kept if made before) and a certificate for DOMAIN, api.DOMAIN and *.DOMAIN in
    DATA_DIR/tls/, for E2B's SDKs with E2B_DOMAIN (host routing over HTTPS)."""
    from cove.server.certificates import base_domain, make_certificates

    settings = load_settings(data_dir=data_dir)
    try:
        name = base_domain(domain)
    except ValueError as error:
        _fail(str(error))
    files = make_certificates(settings.data_dir, name)
    click.echo(f"CA certificate: {files.ca}\nclients' bundle (the system's CAs and this CA): {files.bundle}")
    click.echo("serve with:")
    click.echo(f"  export COVE_TLS_CERT_FILE={files.certificate} COVE_TLS_KEY_FILE={files.key}")
    click.echo(f"  export COVE_E2B_DOMAIN={name}:{settings.port}   # the host and port clients use")
    click.echo("point E2B's SDKs at it with:")
    click.echo(f"  export E2B_DOMAIN={name}:{settings.port} SSL_CERT_FILE={files.bundle} E2B_API_KEY=<key>")


@main.command(epilog="Accepts the same COVE_* settings as 'cove serve'.")
@click.option("--port", type=int, default=None, help="port to listen on [COVE_PORT]")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="[COVE_DATA_DIR]")
@click.option("--exit", "exit_after", is_flag=True, help="stop the server once the demo has run")
def demo(port: int | None, data_dir: Path | None, exit_after: bool) -> None:
    """Start a server, create a session, show it working, and keep serving."""
    import threading

    import uvicorn

    from cove.demo import show_a_session
    from cove.server.app import create_app

    settings = load_settings(port=port, data_dir=data_dir)
    server = uvicorn.Server(uvicorn.Config(create_app(settings), **_listening(settings)))

    def run_demo() -> None:
        try:
            show_a_session(settings, server)
        finally:
            if exit_after:
                server.should_exit = True

    threading.Thread(target=run_demo, daemon=True).start()
    server.run()


@main.group()
def key() -> None:
    """Manage API keys (each key is a tenant)."""


def _store(data_dir: Path | None) -> Any:
    from cove.sessions.store import Store

    settings = load_settings(data_dir=data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return Store(settings.database)


@key.command("create")
@click.option("--name", default="", help="a note to recognise the key by")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None)
def key_create(name: str, data_dir: Path | None) -> None:
    """Create a key and print it (it is shown only this once)."""
    from cove.auth import create_api_key

    click.echo(create_api_key(_store(data_dir), name))


@key.command("ls")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None)
def key_ls(data_dir: Path | None) -> None:
    """List keys by tenant id (keys themselves are never stored)."""
    keys = _store(data_dir).list_api_keys()
    click.echo(
        render_table(["TENANT", "NAME", "CREATED"], [(k.tenant_id, k.name, k.created_at) for k in keys])
    )


# Client side


def _client(endpoint: str | None, api_key: str | None, data_dir: Path | None) -> Any:
    from cove import AgentBay, Config

    key_file = (data_dir or Path(os.environ.get("COVE_DATA_DIR", DEFAULT_DATA_DIR))) / "api_key"
    if not (api_key or os.environ.get("COVE_API_KEY") or os.environ.get("AGENTBAY_API_KEY")):
        if not os.access(key_file, os.R_OK):
            _fail(f"no API key: pass --api-key, set COVE_API_KEY, or make {key_file} readable")
        api_key = key_file.read_text().strip()
    return AgentBay(api_key=api_key or "", cfg=Config(endpoint=endpoint))


def client_options(command: Any) -> Any:
    for option in (
        click.option(
            "--endpoint", default=None, help="server URL [COVE_ENDPOINT, default http://127.0.0.1:9000]"
        ),
        click.option("--api-key", default=None, help="[COVE_API_KEY, else DATA_DIR/api_key]"),
        click.option(
            "--data-dir", type=click.Path(path_type=Path), default=None, help="to find the default key"
        ),
    ):
        command = option(command)
    return command


def _check(result: Any) -> Any:
    if not result.success:
        _fail(f"{result.error_message} (request {result.request_id or '-'})")
    return result


@main.group()
def session() -> None:
    """Create, list, inspect and delete sessions."""


@session.command("create")
@client_options
@click.option("--image", "image_id", default=None, help="image id (default linux_latest)")
@click.option("--label", "labels", multiple=True, help="KEY=VALUE, repeatable")
@click.option("--memory-mb", type=int, default=None)
@click.option("--cpus", type=float, default=None)
@click.option("--pids", type=int, default=None)
@click.option("--disk-mb", type=int, default=None)
@click.option(
    "--network-mode", type=click.Choice(["egress", "none"]), default=None, help="default: the server's"
)
@click.option("--allow", "allow_out", multiple=True, help="CIDR, address or domain (*.example.com) allowed")
@click.option("--deny", "deny_out", multiple=True, help="CIDR, address or domain denied (0.0.0.0/0: all)")
@click.option(
    "--screen",
    default=None,
    metavar="WIDTHxHEIGHT",
    help="the desktop's size, e.g. 1920x1080 (default 1280x800)",
)
@click.option("--env", "env", multiple=True, help="NAME=VALUE for every process of the session, repeatable")
@click.option(
    "--runtime",
    type=click.Choice(["runc", "gvisor"]),
    default=None,
    help="what runs it; default: the server's",
)
@click.option("--from-snapshot", default=None, help="a snapshot's id: start from it (gvisor)")
@click.option("--idle-timeout", type=int, default=None, help="seconds without calls before the idle action")
@click.option(
    "--idle-action",
    type=click.Choice(["delete", "pause"]),
    default=None,
    help="what happens once idle past the idle timeout; default: the server's",
)
def session_create(
    endpoint: str | None,
    api_key: str | None,
    data_dir: Path | None,
    image_id: str | None,
    labels: tuple[str, ...],
    memory_mb: int | None,
    cpus: float | None,
    pids: int | None,
    disk_mb: int | None,
    network_mode: str | None,
    allow_out: tuple[str, ...],
    deny_out: tuple[str, ...],
    screen: str | None,
    env: tuple[str, ...],
    runtime: str | None,
    from_snapshot: str | None,
    idle_timeout: int | None,
    idle_action: str | None,
) -> None:
    """Create a session and print its id."""
    from cove import CreateSessionParams, NetworkPolicy, Screen

    network = None
    if network_mode or allow_out or deny_out:
        network = NetworkPolicy(mode=network_mode, allow_out=list(allow_out), deny_out=list(deny_out))
    params = CreateSessionParams(
        image_id=image_id,
        labels=_pairs(labels, "--label") or None,
        memory_mb=memory_mb,
        cpus=cpus,
        pids=pids,
        disk_mb=disk_mb,
        network=network,
        screen=Screen(*_screen_size(screen)) if screen else None,
        env=_pairs(env, "--env") or None,
        runtime=runtime,
        from_snapshot=from_snapshot,
        idle_release_timeout=idle_timeout,
        idle_action=idle_action,
    )
    with _client(endpoint, api_key, data_dir) as client:
        click.echo(_check(client.create(params)).session.session_id)


@session.command("ls")
@client_options
@click.option("--label", "labels", multiple=True, help="KEY=VALUE filter, repeatable")
@click.option("--status", default=None)
@click.option("--page", type=int, default=None)
@click.option("--limit", type=int, default=None)
def session_ls(
    endpoint: str | None,
    api_key: str | None,
    data_dir: Path | None,
    labels: tuple[str, ...],
    status: str | None,
    page: int | None,
    limit: int | None,
) -> None:
    """List sessions as a table."""
    wanted = dict(label.partition("=")[::2] for label in labels) or None
    with _client(endpoint, api_key, data_dir) as client:
        result = _check(client.list(labels=wanted, status=status, page=page, limit=limit))
    rows = [
        (
            s.session_id,
            s.status,
            s.image_id,
            ",".join(f"{k}={v}" for k, v in s.labels.items()),
            s.created_at,
        )
        for s in result.sessions
    ]
    click.echo(render_table(["SESSION", "STATUS", "IMAGE", "LABELS", "CREATED"], rows))
    click.echo(f"{len(rows)} of {result.total_count} shown")


@session.command("info")
@client_options
@click.argument("session_id")
def session_info(endpoint: str | None, api_key: str | None, data_dir: Path | None, session_id: str) -> None:
    """Show everything known about one session, as JSON."""
    with _client(endpoint, api_key, data_dir) as client:
        result = _check(client.get(session_id))
        click.echo(json.dumps(dataclasses.asdict(result.session.data), indent=2))


@session.command("net")
@client_options
@click.argument("session_id")
@click.option("--mode", type=click.Choice(["egress", "none"]), default=None, help="egress or none")
@click.option("--allow", "allow_out", multiple=True, help="CIDR, address or domain allowed; repeatable")
@click.option("--deny", "deny_out", multiple=True, help="CIDR, address or domain denied; repeatable")
def session_net(
    endpoint: str | None,
    api_key: str | None,
    data_dir: Path | None,
    session_id: str,
    mode: str | None,
    allow_out: tuple[str, ...],
    deny_out: tuple[str, ...],
) -> None:
    """Show a session's network policy, address and recent denials; with options, change it first.

    \b
    cove session net SESSION_ID
    cove session net SESSION_ID --allow pypi.org --allow '*.pythonhosted.org' --deny 0.0.0.0/0
    --allow and --deny replace their lists; a list not given is kept, as is the mode.
    """
    from cove import NetworkPolicy

    with _client(endpoint, api_key, data_dir) as client:
        network = _check(client.get(session_id)).session.network
        result = _check(network.get())
        if mode or allow_out or deny_out:
            current = result.policy
            wanted = NetworkPolicy(
                mode=mode or current.mode,
                allow_out=list(allow_out) if allow_out else current.allow_out,
                deny_out=list(deny_out) if deny_out else current.deny_out,
            )
            result = _check(network.update(wanted))
    click.echo(_network_text(result))


def _network_text(result: Any) -> str:
    """The policy and address as `name: value` lines, then the recent denials as a table."""
    policy = result.policy
    lines = [
        f"mode:      {policy.mode}",
        f"allow out: {', '.join(policy.allow_out) or '-'}",
        f"deny out:  {', '.join(policy.deny_out) or '-'}",
        f"address:   {result.address or '-'}",
        f"gateway:   {result.gateway or '-'}",
        "",
    ]
    rows = [(d.at, d.protocol, d.destination, d.port or "-", d.name or "-") for d in result.denied]
    if rows:
        lines.append(render_table(["AT", "PROTOCOL", "DESTINATION", "PORT", "NAME"], rows))
    lines.append(f"{len(rows)} of {result.denied_count} denied connections shown")
    return "\n".join(lines)


@session.command("view")
@client_options
@click.argument("session_id")
@click.option("--interactive", is_flag=True, help="let the viewer use the mouse and keyboard")
def session_view(
    endpoint: str | None, api_key: str | None, data_dir: Path | None, session_id: str, interactive: bool
) -> None:
    """Print the URL of a page showing the session's desktop live in a browser (no API key needed;
    view-only unless --interactive)."""
    with _client(endpoint, api_key, data_dir) as client:
        found = _check(client.get(session_id)).session
        click.echo(_check(found.get_desktop_url(interactive=interactive)).data)


@session.command("fork")
@client_options
@click.argument("session_id")
@click.option(
    "--count", type=click.IntRange(1, 10), default=None, help="sessions to make from one checkpoint"
)
def session_fork(
    endpoint: str | None, api_key: str | None, data_dir: Path | None, session_id: str, count: int | None
) -> None:
    """Fork a running gvisor session (its processes, memory and files) and print the new ids."""
    with _client(endpoint, api_key, data_dir) as client:
        found = _check(client.get(session_id)).session
        if count is None:
            click.echo(_check(found.beta_fork()).session.session_id)
            return
        for forked in _check(found.beta_fork(count=count)).sessions:
            click.echo(forked.session_id)


@session.command("snapshot")
@client_options
@click.argument("session_id")
@click.argument("name")
def session_snapshot(
    endpoint: str | None, api_key: str | None, data_dir: Path | None, session_id: str, name: str
) -> None:
    """Snapshot a running gvisor session (it runs on) and print the snapshot's id."""
    with _client(endpoint, api_key, data_dir) as client:
        found = _check(client.get(session_id)).session
        click.echo(_check(found.snapshot(name)).snapshot.snapshot_id)


@session.command("rm")
@client_options
@click.argument("session_ids", nargs=-1, required=True)
def session_rm(
    endpoint: str | None, api_key: str | None, data_dir: Path | None, session_ids: tuple[str, ...]
) -> None:
    """Delete sessions (deleting one twice is fine)."""
    with _client(endpoint, api_key, data_dir) as client:
        for session_id in session_ids:
            _check(client.delete(session_id))
            click.echo(f"deleted {session_id}")


@session.command("exec", context_settings={"ignore_unknown_options": True})
@client_options
@click.option("--timeout-ms", type=int, default=3_600_000, show_default=True)
@click.option("--cwd", default=None, help="working directory in the session")
@click.option("--env", "envs", multiple=True, help="KEY=VALUE, repeatable")
@click.argument("session_id")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def session_exec(
    endpoint: str | None,
    api_key: str | None,
    data_dir: Path | None,
    timeout_ms: int,
    cwd: str | None,
    envs: tuple[str, ...],
    session_id: str,
    command: tuple[str, ...],
) -> None:
    """Run COMMAND in a session, streaming its output; exits with its exit code.

    \b
    cove session exec SESSION_ID -- ls -la /tmp
    cove session exec SESSION_ID -- 'make && ./run | tee log'   (one argument: a shell line)
    """
    line = command[0] if len(command) == 1 else shlex.join(command)
    with _client(endpoint, api_key, data_dir) as client:
        handle = _check(client.get(session_id)).session
        result = handle.command.execute_command(
            line,
            timeout_ms=timeout_ms,
            cwd=cwd,
            envs=_pairs(envs, "--env"),
            on_stdout=lambda text: _echo(text, sys.stdout),
            on_stderr=lambda text: _echo(text, sys.stderr),
        )
    if not result.success and result.exit_code == 1 and result.code:
        _fail(f"{result.error_message} (request {result.request_id or '-'})")
    if result.timed_out:
        click.echo(f"cove: {result.error_message}", err=True)
    sys.exit(result.exit_code)


def _echo(text: str, stream: Any) -> None:
    stream.write(text)
    stream.flush()


def _screen_size(text: str) -> tuple[int, int]:
    """WIDTHxHEIGHT as two numbers; the server checks their bounds."""
    width, _, height = text.lower().partition("x")
    if not (width.isdigit() and height.isdigit()):
        _fail(f"--screen: {text!r} is not WIDTHxHEIGHT, e.g. 1920x1080")
    return int(width), int(height)


def _pairs(items: tuple[str, ...], option: str) -> dict[str, str]:
    parsed = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            _fail(f"{option} {item!r} must look like KEY=VALUE")
        parsed[name] = value
    return parsed


def _remote(spec: str) -> tuple[str, str] | None:
    """`SESSION_ID:PATH` as (session id, path); None for a local path."""
    session_id, sep, path = spec.partition(":")
    if sep and session_id.startswith("session-") and "/" not in session_id:
        return session_id, path
    return None


@session.command("cp")
@client_options
@click.argument("source")
@click.argument("destination")
def session_cp(
    endpoint: str | None, api_key: str | None, data_dir: Path | None, source: str, destination: str
) -> None:
    """Copy a file into or out of a session, streamed, of any size.

    \b
    cove session cp ./data.csv SESSION_ID:/home/user/data.csv
    cove session cp SESSION_ID:/home/user/out.tar.gz ./out.tar.gz
    """
    remote_source, remote_destination = _remote(source), _remote(destination)
    if (remote_source is None) == (remote_destination is None):
        _fail("exactly one of SOURCE and DESTINATION must be SESSION_ID:PATH")
    with _client(endpoint, api_key, data_dir) as client:
        if remote_destination is not None:
            session_id, path = remote_destination
            files = _check(client.get(session_id)).session.file_system
            result = _check(files.upload_file(source, path or os.path.basename(source)))
            click.echo(f"{result.bytes_sent} bytes to {session_id}:{result.path}")
        elif remote_source is not None:
            session_id, path = remote_source
            if os.path.isdir(destination):
                destination = os.path.join(destination, os.path.basename(path))
            files = _check(client.get(session_id)).session.file_system
            result = _check(files.download_file(path, destination))
            click.echo(f"{result.bytes_received} bytes to {destination}")


@session.command("shell")
@client_options
@click.option(
    "--command", "command", default="bash -l", show_default=True, help="what to run on the terminal"
)
@click.argument("session_id")
def session_shell(
    endpoint: str | None, api_key: str | None, data_dir: Path | None, command: str, session_id: str
) -> None:
    """An interactive terminal in a session (Ctrl-D or `exit` leaves it)."""
    from cove.terminal import run_shell

    with _client(endpoint, api_key, data_dir) as client:
        handle = _check(client.get(session_id)).session
        try:
            code = run_shell(handle, command)
        except RuntimeError as error:
            _fail(str(error))
    sys.exit(code)


@main.group()
def snapshot() -> None:
    """Snapshots of gvisor sessions (start a session from one with `session create --from-snapshot`)."""


@snapshot.command("ls")
@client_options
def snapshot_ls(endpoint: str | None, api_key: str | None, data_dir: Path | None) -> None:
    """List this key's snapshots as a table."""
    with _client(endpoint, api_key, data_dir) as client:
        result = _check(client.list_snapshots())
    rows = [
        (s.snapshot_id, s.name, s.source_session_id, str(s.size_bytes), s.created_at)
        for s in result.snapshots
    ]
    click.echo(render_table(["SNAPSHOT", "NAME", "SOURCE", "BYTES", "CREATED"], rows))


@snapshot.command("rm")
@client_options
@click.argument("snapshot_ids", nargs=-1, required=True)
def snapshot_rm(
    endpoint: str | None, api_key: str | None, data_dir: Path | None, snapshot_ids: tuple[str, ...]
) -> None:
    """Delete snapshots and their files."""
    with _client(endpoint, api_key, data_dir) as client:
        for snapshot_id in snapshot_ids:
            _check(client.delete_snapshot(snapshot_id))
            click.echo(f"deleted {snapshot_id}")


@main.group()
def image() -> None:
    """Images that sessions run on."""


def _images(data_dir: Path | None) -> Any:
    from cove.sandbox.images import image_store

    return image_store(load_settings(data_dir=data_dir))


def _image_action(action: Any) -> Any:
    """Run an image store call, turning its expected failures into a one-line error."""
    from cove.errors import CoveError

    try:
        return action()
    except (CoveError, OSError) as error:
        _fail(str(error))


def _needs_root(command: str) -> None:
    if os.geteuid() != 0:
        _fail(f"cove image {command} needs root: it stores files owned by the sandboxes' user IDs")


@image.command("ls")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None)
def image_ls(data_dir: Path | None) -> None:
    """List the images stored in the data directory (builds the default one if missing)."""
    settings = load_settings(data_dir=data_dir)
    store = _images(data_dir)
    _image_action(lambda: store.get(settings.default_image))
    rows = [(i.image_id, f"{i.size_bytes / 2**20:.0f} MiB", i.source[:70]) for i in store.list()]
    click.echo(render_table(["IMAGE", "SIZE", "SOURCE"], rows))


@image.command("build")
@click.argument("image_id")
@click.option("--force", is_flag=True, help="replace the image if it exists (refused while sandboxes use it)")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None)
def image_build(image_id: str, force: bool, data_dir: Path | None) -> None:
    """Build IMAGE_ID from its recipe: debootstrap from the Debian mirror, then apt.

    \b
    Recipes: linux_latest (shell and python3), code_latest (python3 with ipykernel, numpy,
    pandas, matplotlib; nodejs). Downloads are kept in COVE_IMAGE_CACHE_DIR, so a rebuild
    fetches only the package indexes. `build linux_latest --force` replaces the default image
    built from the host's packages with a debootstrapped one (docs/images.md).
    """
    import time

    _needs_root("build")
    started = time.monotonic()
    built = _image_action(lambda: _images(data_dir).build(image_id, on_progress=click.echo, force=force))
    seconds = time.monotonic() - started
    click.echo(f"built {built.image_id}: {built.size_bytes / 2**20:.0f} MiB in {seconds:.0f} s")


@image.command("import")
@click.argument("image_id")
@click.argument("path", type=click.Path(path_type=Path, exists=True))
@click.option("--force", is_flag=True, help="replace the image if it exists (refused while sandboxes use it)")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None)
def image_import(image_id: str, path: Path, force: bool, data_dir: Path | None) -> None:
    """Import PATH, a `docker save` tarball or an OCI image layout (a folder or a tar), as IMAGE_ID.

    \b
    docker save debian:12 -o debian.tar && cove image import debian12 debian.tar
    skopeo copy docker://python:3-slim oci:python-slim && cove image import py ./python-slim
    Sessions run the image's own python3 (Cove's init and tools are Python): an image without
    python3 is stored, but sessions cannot start on it.
    """
    import time

    _needs_root("import")
    started = time.monotonic()
    imported = _image_action(
        lambda: _images(data_dir).import_image(image_id, path, on_progress=click.echo, force=force)
    )
    seconds = time.monotonic() - started
    click.echo(f"imported {imported.image_id}: {imported.size_bytes / 2**20:.0f} MiB in {seconds:.1f} s")
    if imported.python3 is None:
        click.echo(f"warning: {image_id} has no python3, so sessions cannot start on it", err=True)


@image.command("rm")
@click.argument("image_ids", nargs=-1, required=True)
@click.option("--data-dir", type=click.Path(path_type=Path), default=None)
def image_rm(image_ids: tuple[str, ...], data_dir: Path | None) -> None:
    """Delete images; refused while sandboxes on this machine use them (sessions, warm pools)."""
    store = _images(data_dir)
    for image_id in image_ids:
        _image_action(lambda image_id=image_id: store.remove(image_id))
        click.echo(f"deleted {image_id}")


@image.command("inspect")
@click.argument("image_id")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None)
def image_inspect(image_id: str, data_dir: Path | None) -> None:
    """Show an image's image.json, with its size, python3 and the sandboxes using it, as JSON."""
    store = _images(data_dir)
    image = _image_action(lambda: store.get(image_id))
    shown = {
        "image_id": image.image_id,
        "rootfs": str(image.rootfs),
        "size": f"{image.size_bytes / 2**20:.0f} MiB",
        "python3": image.python3,
        "sandboxes_using_it": len(store.in_use(image_id)),
        **store.record(image_id),
    }
    if image.python3 is None:
        shown["warning"] = "no python3 on the PATH: sessions cannot start (Cove's init and tools are Python)"
    click.echo(json.dumps(shown, indent=2))


@main.group()
def context() -> None:
    """Contexts: named persistent storage of your API key."""


@context.command("ls")
@client_options
@click.option("--limit", type=int, default=100)
def context_ls(endpoint: str | None, api_key: str | None, data_dir: Path | None, limit: int) -> None:
    """List contexts as a table."""
    from cove import ContextListParams

    with _client(endpoint, api_key, data_dir) as client:
        result = _check(client.context.list(ContextListParams(max_results=limit)))
    rows = [(c.id, c.name, c.state, c.created_at, c.last_used_at) for c in result.contexts]
    click.echo(render_table(["CONTEXT", "NAME", "STATE", "CREATED", "LAST USED"], rows))
    click.echo(f"{len(rows)} of {result.total_count} shown")


@context.command("create")
@client_options
@click.argument("name")
def context_create(endpoint: str | None, api_key: str | None, data_dir: Path | None, name: str) -> None:
    """Create a context and print its id."""
    with _client(endpoint, api_key, data_dir) as client:
        click.echo(_check(client.context.create(name)).context_id)


@context.command("rm")
@client_options
@click.argument("context_ids", nargs=-1, required=True)
def context_rm(
    endpoint: str | None, api_key: str | None, data_dir: Path | None, context_ids: tuple[str, ...]
) -> None:
    """Delete contexts and every file in them."""
    from cove import Context

    with _client(endpoint, api_key, data_dir) as client:
        for context_id in context_ids:
            _check(client.context.delete(Context(id=context_id, name="")))
            click.echo(f"deleted {context_id}")


@context.command("files")
@client_options
@click.argument("context_id")
@click.option("--path", default="/", help="the folder to list (default: the top)")
def context_files(
    endpoint: str | None, api_key: str | None, data_dir: Path | None, context_id: str, path: str
) -> None:
    """List the files and folders in a folder of a context."""
    with _client(endpoint, api_key, data_dir) as client:
        result = _check(client.context.list_files(context_id, path, 1, 1000))
    rows = [(e.file_path, e.file_type, e.size, e.gmt_modified) for e in result.entries]
    click.echo(render_table(["PATH", "TYPE", "SIZE", "MODIFIED"], rows))
    click.echo(f"{len(rows)} of {result.count} shown")


@context.command("rename")
@client_options
@click.argument("context_id")
@click.argument("name")
def context_rename(
    endpoint: str | None, api_key: str | None, data_dir: Path | None, context_id: str, name: str
) -> None:
    """Give a context a new name (names are unique per key)."""
    from cove import Context

    with _client(endpoint, api_key, data_dir) as client:
        _check(client.context.update(Context(id=context_id, name=name)))
    click.echo(f"renamed {context_id} to {name}")


@context.command("clear")
@client_options
@click.argument("context_id")
def context_clear(endpoint: str | None, api_key: str | None, data_dir: Path | None, context_id: str) -> None:
    """Delete every file of a context, keeping the context."""
    with _client(endpoint, api_key, data_dir) as client:
        _check(client.context.clear(context_id))
    click.echo(f"cleared {context_id}")


@context.command("url")
@client_options
@click.argument("context_id")
@click.argument("path")
@click.option("--upload", is_flag=True, help="a URL to PUT the file to (default: one to GET it from)")
def context_url(
    endpoint: str | None, api_key: str | None, data_dir: Path | None, context_id: str, path: str, upload: bool
) -> None:
    """Print an expiring URL for one file of a context, usable with plain curl and no key."""
    with _client(endpoint, api_key, data_dir) as client:
        calls = client.context
        found = (
            calls.get_file_upload_url(context_id, path)
            if upload
            else calls.get_file_download_url(context_id, path)
        )
    click.echo(_check(found).url)


@context.command("rm-file")
@client_options
@click.argument("context_id")
@click.argument("paths", nargs=-1, required=True)
def context_rm_file(
    endpoint: str | None, api_key: str | None, data_dir: Path | None, context_id: str, paths: tuple[str, ...]
) -> None:
    """Delete files of a context."""
    with _client(endpoint, api_key, data_dir) as client:
        for path in paths:
            _check(client.context.delete_file(context_id, path))
            click.echo(f"deleted {path}")
