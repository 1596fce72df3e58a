"""AgentBay's OSS tools (`oss_env_init`, `oss_upload`, `oss_download`, `oss_upload_annon`,
`oss_download_annon`), served by the server itself: a session's network may be shut
(docs/network.md), so the server moves the bytes between the sandbox's files (streamed through its
tool agent) and an S3-compatible store (boto3) or a URL (httpx). Nothing is held whole in memory.

Credentials given to `oss_env_init` stay in this process's memory, per session, until the session
ends; they are never stored, logged or answered back. A restart of the server forgets them.

The server makes requests to endpoints and URLs that the session's user chose. So that a session
cannot use it to reach what only the server can (its own API, a database, a cloud metadata service),
hosts that resolve to a loopback, private, link-local or other non-global address (an IPv4 one
inside an IPv6 address included) are refused unless `COVE_OSS_PRIVATE_NETWORKS` allows them;
redirects are not followed, and the proxy variables (HTTP_PROXY...) are not used for URLs. For the
URL tools the check is made when the connection is opened, on the very address connected to, so a
name that resolves to a public address when checked and to a private one a moment later (DNS
rebinding) gains nothing. boto3 resolves an S3 endpoint itself: there the check is made just before,
which rebinding could outrun; an operator who needs more blocks the server's own egress.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import posixpath
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import httpcore
import httpx
from botocore.exceptions import BotoCoreError, ClientError

from cove.contexts.s3_storage import ObjectWriter, s3_client, store_failed
from cove.contexts.transfer_limits import TransferLimits
from cove.errors import CoveError, InvalidArgument
from cove.sandbox.agent_client import CHUNK_BYTES, AgentClient

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

HTTP_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
"""A URL that sends or takes nothing for this long fails the transfer."""


def _tool(name: str, description: str, required: list[str], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    properties = {argument: {"type": "string"} for argument in (*required, *optional)}
    return {
        "name": name,
        "description": description,
        "inputSchema": {
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": False,
        },
    }


OSS_TOOLS: list[dict[str, Any]] = [
    _tool(
        "oss_env_init",
        "Keep the credentials and endpoint that oss_upload and oss_download use in this session (any "
        "S3-compatible store; AWS S3 when no endpoint is given). Kept in the server's memory only.",
        ["access_key_id", "access_key_secret"],
        ("security_token", "endpoint", "region"),
    ),
    _tool(
        "oss_upload",
        "Upload the file at `path` in the session to `object` in `bucket`.",
        ["bucket", "object", "path"],
    ),
    _tool(
        "oss_download",
        "Download `object` of `bucket` to `path` in the session (a path ending in / gets the object's name).",
        ["bucket", "object", "path"],
    ),
    _tool(
        "oss_upload_annon",
        "PUT the file at `path` in the session to an http(s) URL, such as a presigned upload URL.",
        ["url", "path"],
    ),
    _tool(
        "oss_download_annon",
        "GET an http(s) URL, such as a presigned download URL, into `path` in the session.",
        ["url", "path"],
    ),
]
OSS_TOOL_NAMES = frozenset(tool["name"] for tool in OSS_TOOLS)


class OssFailed(CoveError):
    """A transfer that could not be done; the tool answers it as an error, for the caller to read."""


@dataclass(frozen=True)
class OssCredentials:
    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str = field(repr=False)
    endpoint: str
    region: str


def _arguments(name: str, raw: Any) -> dict[str, str]:
    """The tool's arguments, each a string; 400 naming the first missing or wrong one."""
    schema = next(tool for tool in OSS_TOOLS if tool["name"] == name)["inputSchema"]
    for key, value in raw.items():
        if key not in schema["properties"]:
            raise InvalidArgument(f"{name}: unknown argument {key!r}")
        if not isinstance(value, str):
            raise InvalidArgument(f"{name}: {key} must be a string")
    for key in schema["required"]:
        if not raw.get(key):
            raise InvalidArgument(f"{name}: {key} is required")
    return dict(raw)


NAT64 = ipaddress.ip_network("64:ff9b::/96")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def check_destination(url: str, private_networks: bool) -> None:
    """Refuse a URL that is not http(s), or whose host resolves to a non-global address."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OssFailed(f"{url!r} is not an http:// or https:// URL")
    if not private_networks:
        global_address(parts.hostname, parts.port or 443)


def global_address(host: str, port: int) -> str:
    """The address to connect to for `host`; OssFailed unless every address it resolves to is global
    (one private address among public ones is refused too: which one is used is not ours to pick)."""
    try:
        found = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as error:
        raise OssFailed(f"cannot resolve {host!r}: {error}") from None
    addresses = [ipaddress.ip_address(str(address[0]).split("%")[0]) for *_, address in found]
    for ip in addresses:
        if not _is_global(ip):
            raise OssFailed(
                f"{host} resolves to {ip}, a loopback, private or reserved address, which this "
                "server does not reach for sessions (an operator can allow it: COVE_OSS_PRIVATE_NETWORKS)"
            )
    if not addresses:
        raise OssFailed(f"cannot resolve {host!r}")
    return str(addresses[0])


def _is_global(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """`is_global`, also for the IPv4 address inside an IPv6 one (::ffff:a.b.c.d, 64:ff9b::/96, 6to4)."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour
        if inner is None and (ip in NAT64 or ip in IPV4_COMPATIBLE):
            inner = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if inner is not None and not inner.is_global:
            return False
    return ip.is_global


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Opens TCP connections only to the global address the host resolved to when checked."""

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        address = await asyncio.to_thread(global_address, host, port)
        return await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise OssFailed("URLs of the OSS tools cannot name a Unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def url_client(private_networks: bool) -> httpx.AsyncClient:
    """The client for the URL tools: no redirects and, unless private networks are allowed,
    connections only to checked global addresses (TLS still verified against the URL's host) and no
    HTTP(S)_PROXY, since a proxy would resolve and reach the host itself, past the check."""
    if private_networks:
        return httpx.AsyncClient(timeout=HTTP_TIMEOUT, follow_redirects=False)
    transport = httpx.AsyncHTTPTransport()  # an explicit transport: proxy variables are not used
    # httpx has no public way to give its transport a network backend; this is the pool it makes.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(), network_backend=_GuardedBackend()
    )
    return httpx.AsyncClient(timeout=HTTP_TIMEOUT, follow_redirects=False, transport=transport)


def _answer(text: str, is_error: bool = False) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": text}], "isError": is_error}


def _into_folder(path: str, name: str) -> str:
    """`path`, or `path` + `name` when `path` names a folder by ending in '/'."""
    return path + (name or "download") if path.endswith("/") else path


class ObjectStorageTools:
    """The OSS tools of every session, and the credentials each session's `oss_env_init` gave."""

    def __init__(self, limits: TransferLimits, private_networks: bool = False) -> None:
        self.limits = limits
        """Uploads read a file from the sandbox: they run under its caps and deadline. A sparse file
        is sent whole, holes as zeros, but only streamed through (a part at a time), never stored
        on the host, so only the caps bound what it costs."""
        self.private_networks = private_networks
        self._credentials: dict[str, OssCredentials] = {}
        self._clients: dict[str, S3Client] = {}
        """Made on first use and kept: making a boto3 client takes a good half second."""
        self._lock = threading.Lock()

    def forget(self, session_id: str) -> None:
        with self._lock:
            self._credentials.pop(session_id, None)
            self._clients.pop(session_id, None)

    def call(self, session_id: str, agent: AgentClient, name: str, raw: Any) -> dict[str, Any]:
        """Run OSS tool `name`; answers MCP's result, with what went wrong as an error answer."""
        arguments = _arguments(name, raw)
        handlers: dict[str, Callable[[str, AgentClient, dict[str, str]], str]] = {
            "oss_env_init": self._env_init,
            "oss_upload": self._upload,
            "oss_download": self._download,
            "oss_upload_annon": self._upload_anonymous,
            "oss_download_annon": self._download_anonymous,
        }
        try:
            return _answer(handlers[name](session_id, agent, arguments))
        except CoveError as error:
            return _answer(f"{name}: {error.message}", is_error=True)

    def _env_init(self, session_id: str, agent: AgentClient, arguments: dict[str, str]) -> str:
        endpoint = arguments.get("endpoint", "")
        if endpoint and "://" not in endpoint:
            endpoint = "https://" + endpoint  # AgentBay's endpoints are host names
        if endpoint:
            check_destination(endpoint, self.private_networks)
        credentials = OssCredentials(
            arguments["access_key_id"],
            arguments["access_key_secret"],
            arguments.get("security_token", ""),
            endpoint,
            arguments.get("region", "") or "us-east-1",
        )
        with self._lock:
            self._credentials[session_id] = credentials
            self._clients.pop(session_id, None)
        return json.dumps({"endpoint": endpoint or "AWS S3", "region": credentials.region})

    def _store(self, session_id: str) -> tuple[S3Client, str]:
        """The S3 client of the session's credentials, and how errors name it."""
        with self._lock:
            credentials, client = self._credentials.get(session_id), self._clients.get(session_id)
        if credentials is None:
            raise OssFailed("no credentials in this session: call oss_env_init first")
        if credentials.endpoint:
            check_destination(credentials.endpoint, self.private_networks)  # its address may have changed
        if client is None:
            try:
                client = s3_client(
                    credentials.endpoint,
                    credentials.region,
                    credentials.access_key_id,
                    credentials.access_key_secret,
                    credentials.security_token,
                )
            except BotoCoreError as error:  # settings the S3 client refuses, a region that is no name
                raise OssFailed(
                    f"the settings of oss_env_init make no S3 client: {error}; call it again"
                ) from None
            with self._lock:
                if self._credentials.get(session_id) is credentials:
                    self._clients[session_id] = client
        return client, credentials.endpoint or "AWS S3"

    def _upload(self, session_id: str, agent: AgentClient, arguments: dict[str, str]) -> str:
        client, where = self._store(session_id)
        bucket, key, path = arguments["bucket"], arguments["object"], arguments["path"]

        budget = self.limits.start()

        async def copy() -> int:
            size, chunks = await agent.download(path)
            self.limits.check_file(path, size)
            writer = ObjectWriter(client, bucket, key)
            try:
                async for chunk in budget.count(chunks):
                    writer.write(chunk)
            except BaseException:
                writer.abort()
                raise
            return writer.commit()

        try:
            size = asyncio.run(budget.within(copy()))
        except (ClientError, BotoCoreError) as error:
            raise store_failed(error, f"{where} (bucket {bucket!r})") from None
        return f"Upload success: {size} bytes from {path} to {bucket}/{key}"

    def _download(self, session_id: str, agent: AgentClient, arguments: dict[str, str]) -> str:
        client, where = self._store(session_id)
        bucket, key = arguments["bucket"], arguments["object"]
        path = _into_folder(arguments["path"], posixpath.basename(key))
        try:
            found = client.get_object(Bucket=bucket, Key=key)
            body = found["Body"]
            try:
                size = found["ContentLength"]
                asyncio.run(agent.upload(path, size, _async(body.iter_chunks(CHUNK_BYTES))))
            finally:
                body.close()
        except (ClientError, BotoCoreError) as error:
            raise store_failed(error, f"{where} (bucket {bucket!r}, object {key!r})") from None
        return f"Download success: {size} bytes from {bucket}/{key} to {path}"

    def _upload_anonymous(self, session_id: str, agent: AgentClient, arguments: dict[str, str]) -> str:
        url, path = arguments["url"], arguments["path"]
        check_destination(url, self.private_networks)

        budget = self.limits.start()

        async def send() -> tuple[int, httpx.Response]:
            size, chunks = await agent.download(path)
            self.limits.check_file(path, size)
            async with url_client(self.private_networks) as http:
                # S3 wants a length, not a chunked body
                headers = {"Content-Length": str(size)}
                return size, await http.put(url, content=budget.count(chunks), headers=headers)

        try:
            size, response = asyncio.run(budget.within(send()))
        except httpx.HTTPError as error:
            raise OssFailed(f"the upload to {_shown(url)} failed: {error}") from None
        _check_status(response, url)
        return f"Upload success: {size} bytes from {path}"

    def _download_anonymous(self, session_id: str, agent: AgentClient, arguments: dict[str, str]) -> str:
        url = arguments["url"]
        path = _into_folder(arguments["path"], posixpath.basename(unquote(urlsplit(url).path)))
        check_destination(url, self.private_networks)

        async def fetch() -> int:
            async with (
                url_client(self.private_networks) as http,
                http.stream("GET", url, headers={"Accept-Encoding": "identity"}) as response,
            ):
                if response.status_code != 200:
                    await response.aread()
                    _check_status(response, url)
                length = response.headers.get("Content-Length")
                if length is not None and length.isdigit():
                    await agent.upload(path, int(length), response.aiter_raw())
                    return int(length)
                with self.limits.spool() as spool:  # no length given: learn it first
                    async for chunk in response.aiter_raw():
                        spool.write(chunk)
                    size = spool.tell()
                    spool.seek(0)
                    await agent.upload(path, size, _async(iter(lambda: spool.read(CHUNK_BYTES), b"")))
                    return size

        try:
            size = asyncio.run(fetch())
        except httpx.HTTPError as error:
            raise OssFailed(f"the download from {_shown(url)} failed: {error}") from None
        return f"Download success: {size} bytes to {path}"


async def _async(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


def _shown(url: str) -> str:
    """A URL without its query, which may hold a presigned signature."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _check_status(response: httpx.Response, url: str) -> None:
    if response.status_code < 300:
        return
    if response.is_redirect:
        raise OssFailed(
            f"{_shown(url)} redirects to {response.headers.get('Location', '?')}; redirects are not "
            "followed, give the final URL"
        )
    raise OssFailed(f"{_shown(url)} answered HTTP {response.status_code}: {response.text[:300]}")
