"""Fixtures for tests against a real server and real runc sandboxes."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cove import AgentBay, AsyncAgentBay, AsyncSession, Config, CreateSessionParams, Session
from tests.integration.computer_tools import Call, tool_caller
from tests.integration.e2b_modes import start_tls_server
from tests.integration.recipe_images import IMAGES_DIR, ensure_built
from tests.integration.runtimes import ensure_runsc
from tests.integration.server import KEY_A, CoveServer, remove_data, scratch_server, sdk_session


@pytest.fixture
def data_root() -> Iterator[Path]:
    """A scratch folder sandboxes can reach (pytest's own tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="cove-test-", dir="/var/tmp"))
    path.chmod(0o711)
    yield path
    remove_data(path)


@contextlib.contextmanager
def shared_server(**settings: Any) -> Iterator[CoveServer]:
    """A server for the tests that do not restart or reconfigure it."""
    # OSS tools may reach the loopback S3 server the tests start (s3_server), which is refused by default
    with scratch_server(session_quota=20, oss_private_networks=True, **settings) as started:
        yield started


@pytest.fixture(scope="session")
def server() -> Iterator[CoveServer]:
    """One server shared by the tests that do not restart or reconfigure it."""
    with shared_server() as started:
        yield started


@pytest.fixture(scope="session")
def gvisor_server() -> Iterator[CoveServer]:
    """`server` whose sessions run on gvisor unless their create names a runtime: for clients that
    cannot name one (runtimes.on_default_runtime)."""
    ensure_runsc()
    with shared_server(default_runtime="gvisor") as started:
        yield started


@contextlib.contextmanager
def shared_tls_server(**settings: Any) -> Iterator[CoveServer]:
    """A server on HTTPS, for E2B's SDK routed by host (e2b_modes.py)."""
    root = Path(tempfile.mkdtemp(prefix="cove-test-", dir="/var/tmp"))
    root.chmod(0o711)
    try:
        server = start_tls_server(root, **settings)
        try:
            yield server
        finally:
            server.stop()
            server.remove_sandboxes()
    finally:
        remove_data(root)


@pytest.fixture(scope="session")
def tls_server() -> Iterator[CoveServer]:
    with shared_tls_server() as started:
        yield started


@pytest.fixture(scope="session")
def gvisor_tls_server() -> Iterator[CoveServer]:
    """`tls_server` whose sessions run on gvisor unless their create names a runtime."""
    ensure_runsc()
    with shared_tls_server(default_runtime="gvisor") as started:
        yield started


RECIPE_SERVERS = {"code_server": "code_latest", "browser_server": "browser_latest"}
"""The fixtures whose server runs sessions on a recipe's image, and that image."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Build the images the recipe servers need before any test runs, outside the tests' timeouts."""
    if config.option.collectonly:
        return
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    for fixture, image_id in RECIPE_SERVERS.items():
        if any(fixture in getattr(item, "fixturenames", ()) for item in items):
            ensure_built(image_id, lambda line: reporter.write_line(line) if line[:1] != " " else None)


@contextlib.contextmanager
def recipe_server(image_id: str, **settings: Any) -> Iterator[CoveServer]:
    """A server whose default image is `image_id`, built by ImageStore.build (recipe_images.py).

    Its images folder (COVE_IMAGES_DIR) is the persistent test image cache, shared across runs.
    """
    settings = {"images_dir": IMAGES_DIR, "default_image": image_id, "session_quota": 20, **settings}
    with scratch_server(**settings) as started:
        yield started


@pytest.fixture(scope="session")
def code_server() -> Iterator[CoveServer]:
    with recipe_server("code_latest") as started:
        yield started


@pytest.fixture(scope="session")
def gvisor_code_server() -> Iterator[CoveServer]:
    """`code_server` whose sessions run on gvisor unless their create names a runtime."""
    ensure_runsc()
    with recipe_server("code_latest", default_runtime="gvisor") as started:
        yield started


@pytest.fixture
def code_session(code_server: CoveServer, runtime: str | None) -> Iterator[Session]:
    """A session of code_latest on `runtime` through Cove's SDK, deleted after the test."""
    with sdk_session(code_server, "code_latest", runtime) as session:
        yield session


@pytest.fixture(scope="session")
def browser_server() -> Iterator[CoveServer]:
    with recipe_server("browser_latest") as started:
        yield started


@pytest.fixture(scope="session")
def gvisor_browser_server() -> Iterator[CoveServer]:
    """`browser_server` whose sessions run on gvisor unless their create names a runtime."""
    ensure_runsc()
    with recipe_server("browser_latest", default_runtime="gvisor") as started:
        yield started


@pytest.fixture
def api(server: CoveServer) -> Iterator[httpx.Client]:
    with server.client(KEY_A) as client:
        yield client


@pytest.fixture(scope="module")
def runtime(request: pytest.FixtureRequest) -> str | None:
    """The runtime of the sessions a test's fixtures make: the server's default (None), or the one
    a test is parametrized with (runtimes.both_runtimes). Module-scoped, so that a module-scoped
    fixture can make its sessions on it too; a parametrization narrows it to each test."""
    chosen: str | None = getattr(request, "param", None)
    if chosen == "gvisor":
        ensure_runsc()
    return chosen


@pytest.fixture
def new_session(server: CoveServer, runtime: str | None) -> Iterator[Callable[..., dict[str, Any]]]:
    """Create sessions through the REST API, on `runtime` unless the body names one; each is deleted
    after the test, pass or fail."""
    created: list[tuple[str, str]] = []

    def create(key: str = KEY_A, **body: Any) -> dict[str, Any]:
        if runtime is not None:
            body.setdefault("runtime", runtime)
        with server.client(key) as client:
            response = client.post("/v1/sessions", json=body)
        assert response.status_code == 201, response.text
        session: dict[str, Any] = response.json()["session"]
        created.append((key, session["session_id"]))
        return session

    yield create
    for key, session_id in created:
        with server.client(key) as client:
            client.delete(f"/v1/sessions/{session_id}")


@pytest.fixture
def session(server: CoveServer, runtime: str | None) -> Iterator[Session]:
    """A session through the sync SDK on `runtime`, deleted after the test."""
    with AgentBay(api_key=KEY_A, cfg=Config(endpoint=server.url)) as agent_bay:
        created = agent_bay.create(CreateSessionParams(runtime=runtime))
        assert created.session is not None, created.error_message
        yield created.session
        created.session.delete()


@pytest.fixture
async def async_session(server: CoveServer, runtime: str | None) -> AsyncIterator[AsyncSession]:
    """A session through the async SDK on `runtime`, deleted after the test."""
    async with AsyncAgentBay(api_key=KEY_A, cfg=Config(endpoint=server.url)) as agent_bay:
        created = await agent_bay.create(CreateSessionParams(runtime=runtime))
        assert created.session is not None, created.error_message
        yield created.session
        await created.session.delete()


@pytest.fixture
def desktop(api: httpx.Client, new_session: Callable[..., dict[str, Any]]) -> tuple[str, Call]:
    """A session, and a `call(tool, **arguments)` that answers the tool's text or raises ToolFailed."""
    session_id = new_session()["session_id"]
    return session_id, tool_caller(api, session_id)
