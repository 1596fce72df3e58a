"""Bounds on what clients send that need no sandbox: numbers, labels, pages, ports, output size."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cove.agent import answer_size, protocol
from cove.agent.tools import shell
from cove.config import Settings
from cove.errors import InvalidArgument
from cove.paging import MAX_PAGE, check_page
from cove.sessions.links import check_port
from cove.sessions.validation import check_labels, check_limits, check_timeouts, check_tool_call


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("name", ["memory_mb", "cpus", "pids", "disk_mb"])
def test_non_finite_resources_are_refused(name: str, value: float) -> None:
    with pytest.raises(InvalidArgument, match=name):
        check_limits(Settings(), **{name: value})


@pytest.mark.parametrize("labels", [{"\ud800": "a"}, {"a": "\udfff"}, {"a": "b\0"}])
def test_labels_must_be_utf8_text(labels: dict[str, str]) -> None:
    with pytest.raises(InvalidArgument, match="labels"):
        check_labels(labels)


@pytest.mark.parametrize(("page", "limit"), [(0, 10), (MAX_PAGE + 1, 10), (10**20, 10), (1, 0), (1, 10**20)])
def test_pages_are_bounded(page: int, limit: int) -> None:
    with pytest.raises(InvalidArgument, match=r"page|limit"):
        check_page(page, limit)


@pytest.mark.parametrize("port", ["٣٠١٠٠", "\uff13\uff10\uff11\uff10\uff10", "²", "30100²", "030100"])
def test_link_ports_are_ascii_digits(port: str) -> None:
    with pytest.raises(InvalidArgument, match="port"):
        check_port(port)


def test_a_nul_in_a_tool_path_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="paths"):
        check_tool_call(Settings(), "read_multiple_files", {"paths": ["/ok", "/a\0b"]})


@pytest.mark.parametrize("byte", [b"\0", b'"', b"\xff", "é".encode(), "😀".encode()])
def test_captured_output_fits_the_protocol_line_once_escaped(byte: bytes) -> None:
    capture = shell.Capture()
    capture.add(byte * (shell.OUTPUT_LIMIT_BYTES // len(byte) + 10))
    text = capture.text()
    assert answer_size.wire_size(text) <= answer_size.WIRE_BUDGET_BYTES
    assert capture.dropped > 0
    answer = json.dumps({"stdout": text}, ensure_ascii=False)  # as the shell tool writes it
    line = protocol.encode(protocol.result(1, {"content": [{"type": "text", "text": answer}]}))
    assert len(line) < protocol.MAX_LINE_BYTES // 2


NUMBERS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
)
TEXT = st.text(max_size=300)


@settings(max_examples=300, deadline=None)
@given(
    labels=st.one_of(
        st.none(), st.integers(), st.dictionaries(TEXT, st.one_of(TEXT, st.integers()), max_size=25)
    ),
    memory_mb=NUMBERS,
    cpus=NUMBERS,
    pids=NUMBERS,
    disk_mb=NUMBERS,
    idle=NUMBERS,
    lifetime=NUMBERS,
)
def test_create_body_checks_answer_values_or_invalid_argument(labels: Any, **numbers: Any) -> None:
    """Whatever a create body holds, its checks give storable values or InvalidArgument, nothing else."""
    try:
        checked = check_labels(labels)
        limits = check_limits(
            Settings(), numbers["memory_mb"], numbers["cpus"], numbers["pids"], numbers["disk_mb"]
        )
        timeouts = check_timeouts(Settings(), numbers["idle"], numbers["lifetime"])
    except InvalidArgument:
        return
    json.dumps(checked, allow_nan=False).encode()
    assert all(math.isfinite(value) for value in (limits.memory_mb, limits.cpus, limits.pids, limits.disk_mb))
    assert all(0 <= value < 2**63 for value in timeouts)
