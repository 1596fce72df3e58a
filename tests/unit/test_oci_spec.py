"""The OCI spec asks runc for every isolation property Cove promises."""

from __future__ import annotations

from cove.sandbox.oci_spec import IdMapping, Limits, Mount, build_spec


def spec() -> dict:  # type: ignore[type-arg]
    return build_spec(
        hostname="session-x",
        rootfs="/r",
        args=["init"],
        user_uid=1000,
        home="/home/user",
        id_mapping=IdMapping(100000, 65536, 1000, 1_000_042),
        limits=Limits(memory_mb=256, cpus=0.5, pids=64, disk_mb=1024),
        cgroups_path="/cove/i/session-x",
        binds=[Mount("/host/agent", "/.cove/agent")],
    )


def test_namespaces_user_and_privileges() -> None:
    config = spec()
    namespaces = {n["type"] for n in config["linux"]["namespaces"]}
    assert namespaces == {"pid", "network", "ipc", "uts", "mount", "user", "cgroup"}
    assert config["hostname"] == "session-x"
    assert config["process"]["user"] == {"uid": 1000, "gid": 1000}
    assert config["process"]["noNewPrivileges"] is True
    assert all(v == [] for v in config["process"]["capabilities"].values())
    assert config["linux"]["uidMappings"] == [
        {"containerID": 0, "hostID": 100000, "size": 1000},
        {"containerID": 1000, "hostID": 1_000_042, "size": 1},  # the session's own host uid
        {"containerID": 1001, "hostID": 101001, "size": 64535},
    ]
    assert IdMapping.from_spec(config["linux"]["uidMappings"]) == IdMapping(100000, 65536, 1000, 1_000_042)
    assert config["linux"]["seccomp"]["defaultAction"] == "SCMP_ACT_ERRNO"


def test_limits_and_binds() -> None:
    config = spec()
    resources = config["linux"]["resources"]
    assert resources["memory"] == {"limit": 256 * 2**20, "swap": 256 * 2**20}
    assert resources["cpu"] == {"quota": 50_000, "period": 100_000}
    assert resources["pids"] == {"limit": 64}
    bind = next(m for m in config["mounts"] if m["destination"] == "/.cove/agent")
    assert "ro" in bind["options"] and bind["source"] == "/host/agent"
    assert "/proc/kcore" in config["linux"]["maskedPaths"]
    assert "/proc/sys" in config["linux"]["readonlyPaths"]
