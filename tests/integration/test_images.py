"""Imported images under real sessions, and the CLI's image commands and their errors."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.image_layouts import rootfs_layers, write_docker_save, write_oci_layout
from tests.integration.server import CoveServer, running_server
from tests.integration.test_agentbay_wire import rpc

ID_OFFSET = 100000
WHITED_OUT = "etc/removed-by-the-second-layer"


def cove_image(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "cove", "image", *args, "--data-dir", str(data_dir)]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)


@pytest.fixture(scope="module")
def server() -> Iterator[CoveServer]:
    root = Path(tempfile.mkdtemp(prefix="cove-test-", dir="/var/tmp"))
    root.chmod(0o711)
    with running_server(root / "data", warm_pool=0) as started:
        yield started
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def layers(server: CoveServer) -> list[bytes]:
    """linux_latest as two layers: Python's library in the second, which whites out a lower file."""
    rootfs = server.data_dir / "images" / "linux_latest" / "rootfs"
    extras = ({WHITED_OUT: b"gone in the image"}, {"etc/.wh.removed-by-the-second-layer": b""})
    return rootfs_layers(rootfs, ID_OFFSET, lambda path: path.startswith("usr/lib/python3"), extras)


def session_runs(server: CoveServer, image_id: str, command: str) -> str:
    """Create a session on the image, run `command`, delete the session; answers its stdout."""
    with server.client() as client:
        created = client.post("/v1/sessions", json={"image_id": image_id})
        assert created.status_code == 201, created.text
        session_id = created.json()["session"]["session_id"]
        try:
            answer = client.post(
                f"/v1/sessions/{session_id}/tools/shell", json={"arguments": {"command": command}}
            )
            assert answer.status_code == 200, answer.text
            result = json.loads(answer.json()["result"]["content"][0]["text"])
            assert result["exit_code"] == 0, result
            return str(result["stdout"])
        finally:
            client.delete(f"/v1/sessions/{session_id}")


CHECK = f"test ! -e /{WHITED_OUT} && python3 -c 'import json, sys; print(sys.version_info[0])' && id -u"


def test_docker_save_tarball_imports_and_runs_sessions(server: CoveServer, layers: list[bytes]) -> None:
    archive = server.data_dir.parent / "saved.tar"
    write_docker_save(archive, layers, Env=["PATH=/usr/bin:/bin"], WorkingDir="/home/user")
    imported = cove_image("import", "from_docker", str(archive), data_dir=server.data_dir)
    assert imported.returncode == 0, imported.stderr
    assert "layer 2/2" in imported.stdout
    assert session_runs(server, "from_docker", CHECK).split() == ["3", "1000"]
    shown = json.loads(cove_image("inspect", "from_docker", data_dir=server.data_dir).stdout)
    assert shown["python3"] == "/usr/bin/python3"
    assert shown["digest"].startswith("sha256:") and shown["digest"] in shown["source"]
    assert shown["config"] == {"Env": ["PATH=/usr/bin:/bin"], "WorkingDir": "/home/user"}
    assert "bash" in shown["packages"] or shown["packages"] == []


def test_oci_layout_imports_and_runs_sessions(server: CoveServer, layers: list[bytes]) -> None:
    layout = server.data_dir.parent / "oci-layout"
    digest = write_oci_layout(layout, layers, "gzip")
    imported = cove_image("import", "from_oci", str(layout), data_dir=server.data_dir)
    assert imported.returncode == 0, imported.stderr
    assert session_runs(server, "from_oci", CHECK).split() == ["3", "1000"]
    assert json.loads(cove_image("inspect", "from_oci", data_dir=server.data_dir).stdout)["digest"] == digest
    again = cove_image("import", "from_oci", str(layout), data_dir=server.data_dir)
    assert again.returncode == 1 and "already exists; pass --force" in again.stderr


def test_rm_is_refused_while_a_session_runs_on_the_image(server: CoveServer, layers: list[bytes]) -> None:
    archive = server.data_dir.parent / "doomed.tar"
    write_docker_save(archive, layers)
    assert cove_image("import", "doomed", str(archive), data_dir=server.data_dir).returncode == 0
    with server.client() as client:
        session_id = client.post("/v1/sessions", json={"image_id": "doomed"}).json()["session"]["session_id"]
        refused = cove_image("rm", "doomed", data_dir=server.data_dir)
        assert refused.returncode == 1 and "1 sandbox(es) on this machine run on it" in refused.stderr
        client.delete(f"/v1/sessions/{session_id}")
        removed = cove_image("rm", "doomed", data_dir=server.data_dir)
        assert removed.returncode == 0, removed.stderr
        answer = client.post("/v1/sessions", json={"image_id": "doomed"})
    assert answer.status_code == 400
    assert "cove image import doomed PATH" in answer.json()["error"]["message"]
    assert not (server.data_dir / "images" / "doomed").exists()


def test_rm_is_refused_while_a_warm_pool_of_another_server_holds_a_sandbox_on_it(
    server: CoveServer, layers: list[bytes]
) -> None:
    archive = server.data_dir.parent / "pooled.tar"
    write_docker_save(archive, layers)
    assert cove_image("import", "pooled", str(archive), data_dir=server.data_dir).returncode == 0
    images = server.data_dir / "images"
    settings = {"images_dir": images, "default_image": "pooled", "warm_pool": 1}
    with running_server(server.data_dir.parent / "pool-data", **settings) as pooled:
        deadline = time.monotonic() + 60
        while not pooled.mounts() and time.monotonic() < deadline:
            time.sleep(0.2)
        refused = cove_image("rm", "pooled", data_dir=server.data_dir)
        assert refused.returncode == 1 and "1 sandbox(es) on this machine run on it" in refused.stderr
    removed = cove_image("rm", "pooled", data_dir=server.data_dir)
    assert removed.returncode == 0, removed.stderr


def test_an_image_without_python3_is_stored_but_cannot_host_sessions(server: CoveServer) -> None:
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        info = tarfile.TarInfo("bin/sh")
        info.mode = 0o755
        tar.addfile(info, io.BytesIO(b""))
    archive = server.data_dir.parent / "no-python.tar"
    write_docker_save(archive, [layer.getvalue()])
    imported = cove_image("import", "no_python", str(archive), data_dir=server.data_dir)
    assert imported.returncode == 0 and "has no python3" in imported.stderr
    assert json.loads(cove_image("inspect", "no_python", data_dir=server.data_dir).stdout)["python3"] is None
    with server.client() as client:
        answer = client.post("/v1/sessions", json={"image_id": "no_python"})
    assert answer.status_code == 400
    assert "has no python3" in answer.json()["error"]["message"]


def test_missing_images_say_how_to_get_them(server: CoveServer) -> None:
    with server.client() as client:
        native = client.post("/v1/sessions", json={"image_id": "code_latest"})
        assert native.status_code == 400
        assert "build it with 'cove image build code_latest'" in native.json()["error"]["message"]
    agentbay = rpc(server, "CreateMcpSession", ImageId="my_image").json()
    assert agentbay["Success"] is False and agentbay["HttpStatusCode"] == 400
    assert "import it with 'cove image import my_image PATH'" in agentbay["Message"]
    windows = rpc(server, "CreateMcpSession", ImageId="windows_latest").json()
    assert windows["Success"] is False and windows["HttpStatusCode"] == 400
    assert "'windows_latest'" in windows["Message"] and "Cove runs Linux sandboxes" in windows["Message"]


def test_image_commands_explain_their_errors(server: CoveServer) -> None:
    unknown = cove_image("build", "nonsense", data_dir=server.data_dir)
    assert unknown.returncode == 1 and "recipes: linux_latest, code_latest, browser_latest" in unknown.stderr
    desktop = cove_image("build", "computer_latest", data_dir=server.data_dir)
    assert desktop.returncode == 1 and "linux_latest and code_latest have the desktop" in desktop.stderr
    windows = cove_image("build", "windows_latest", data_dir=server.data_dir)
    assert windows.returncode == 1 and "Cove runs Linux sandboxes" in windows.stderr
    missing = cove_image("import", "x", "/nonexistent", data_dir=server.data_dir)
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    bad_name = cove_image("rm", "Bad/Name", data_dir=server.data_dir)
    assert bad_name.returncode == 1 and "not a valid image id" in bad_name.stderr
