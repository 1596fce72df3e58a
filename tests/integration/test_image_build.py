"""`cove image build`: a real debootstrap build of linux_latest by recipe, and a session on it.

Downloads go to the persistent test package cache (recipe_images.py), so after the first run a
build fetches only the mirror's indexes; it still takes a minute or two.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.recipe_images import PACKAGE_CACHE
from tests.integration.server import CoveServer, running_server


def cove_image(*args: str, data_dir: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COVE_IMAGE_CACHE_DIR": str(PACKAGE_CACHE), **settings}
    command = [sys.executable, "-m", "cove", "image", *args, "--data-dir", str(data_dir)]
    return subprocess.run(command, capture_output=True, text=True, timeout=1800, check=False, env=env)


@pytest.mark.timeout(1800)
def test_build_by_recipe_then_a_session_on_it(data_root: Path) -> None:
    data_dir = data_root / "data"
    built = cove_image("build", "linux_latest", data_dir=data_dir)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr
    assert "[1/4] debootstrap" in built.stdout and "I: Extracting" in built.stdout  # phases and output
    assert "built linux_latest" in built.stdout
    images = data_dir / "images"
    assert sorted(os.listdir(images)) == ["linux_latest"]  # no scratch left
    record = json.loads((images / "linux_latest" / "image.json").read_text())
    assert record["source"].startswith("recipe linux_latest: Debian")
    assert "python3" in record["packages"] and "apt" in record["packages"]
    assert any(PACKAGE_CACHE.glob("debs/python3.*_amd64.deb"))

    again = cove_image("build", "linux_latest", data_dir=data_dir)
    assert again.returncode == 1 and "already exists; pass --force" in again.stderr

    with running_server(data_dir, warm_pool=0) as server, server.client() as client:
        session_id = client.post("/v1/sessions", json={}).json()["session"]["session_id"]
        script = r"cat /etc/debian_version; dpkg-query -Wf '${Status}\n' python3; id -un; "
        script += "find /var/lib/apt/lists /var/cache/apt -mindepth 1"
        answer = client.post(
            f"/v1/sessions/{session_id}/tools/shell", json={"arguments": {"command": script}}
        )
        result = json.loads(answer.json()["result"]["content"][0]["text"])
        assert result["exit_code"] == 0, result
        assert result["stdout"].splitlines()[1:] == ["install ok installed", "user"]  # apt's caches gone
        replacing = cove_image("build", "linux_latest", "--force", data_dir=data_dir)
        assert replacing.returncode == 1 and "cannot replace image 'linux_latest'" in replacing.stderr
        client.delete(f"/v1/sessions/{session_id}")


def test_a_failed_build_leaves_nothing(data_root: Path) -> None:
    data_dir = data_root / "data"
    failed = cove_image("build", "linux_latest", data_dir=data_dir, COVE_DEBIAN_SUITE="no-such-suite")
    assert failed.returncode == 1
    assert "debootstrap" in failed.stderr and "no-such-suite" in failed.stderr
    assert os.listdir(data_dir / "images") == []


def test_code_latest_has_its_languages(code_server: CoveServer) -> None:
    """The `code_server` fixture's image, built by recipe: Python's data stack and node run in it."""
    script = "python3 -c 'import ipykernel, matplotlib, numpy, pandas; print(numpy.arange(3).sum())'"
    script += " && node -e 'console.log(40 + 2)'"
    with code_server.client() as client:
        session = client.post("/v1/sessions", json={}).json()["session"]
        assert session["image_id"] == "code_latest"
        try:
            answer = client.post(
                f"/v1/sessions/{session['session_id']}/tools/shell", json={"arguments": {"command": script}}
            )
            result = json.loads(answer.json()["result"]["content"][0]["text"])
            assert (result["exit_code"], result["stdout"].split()) == (0, ["3", "42"]), result
        finally:
            client.delete(f"/v1/sessions/{session['session_id']}")
