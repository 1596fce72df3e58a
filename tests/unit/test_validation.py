"""Input checks: every refusal names its field; everything inside the limits is accepted."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cove.config import Settings
from cove.errors import InvalidArgument
from cove.paging import check_page
from cove.sandbox.screen import DEFAULT_SCREEN, Screen
from cove.sessions.validation import (
    MAX_LABEL_KEY,
    MAX_LABEL_VALUE,
    MAX_LABELS,
    check_labels,
    check_limits,
    check_runtime,
    check_screen,
    check_status,
)

storable = st.characters(exclude_categories=("Cs",), exclude_characters="\0")  # UTF-8 text, no NUL
visible_text = st.text(storable, min_size=1).filter(lambda s: s.strip() != "")
good_labels = st.dictionaries(
    visible_text.filter(lambda s: len(s) <= MAX_LABEL_KEY),
    visible_text.filter(lambda s: len(s) <= MAX_LABEL_VALUE),
    max_size=MAX_LABELS,
)


@given(good_labels)
def test_labels_within_limits_are_kept(labels: dict[str, str]) -> None:
    assert check_labels(labels) == labels


@given(st.dictionaries(st.text(), st.text(), min_size=1))
def test_any_labels_are_accepted_or_refused_naming_the_field(labels: dict[str, str]) -> None:
    try:
        check_labels(labels)
    except InvalidArgument as error:
        assert error.message.startswith("labels")


@pytest.mark.parametrize("labels", [[("a", "b")], "a=b", {"a": None}, {"a": ""}, {"": "b"}])
def test_malformed_labels_are_refused(labels: object) -> None:
    with pytest.raises(InvalidArgument, match=r"^labels"):
        check_labels(labels)


def test_limits_default_and_maxima() -> None:
    settings = Settings(max_memory_mb=2048, max_cpus=2.0, max_pids=100)
    assert check_limits(settings).memory_mb == settings.default_memory_mb
    assert check_limits(settings, memory_mb=2048, cpus=2, pids=100).cpus == 2.0
    with pytest.raises(InvalidArgument, match=r"resources.memory_mb is 4096; this server's maximum is 2048"):
        check_limits(settings, memory_mb=4096)
    with pytest.raises(InvalidArgument, match=r"resources.pids must be a whole number"):
        check_limits(settings, pids=1.5)
    with pytest.raises(InvalidArgument, match=r"resources.cpus must be a number"):
        check_limits(settings, cpus=True)
    assert check_limits(settings).disk_mb == settings.default_disk_mb
    with pytest.raises(InvalidArgument, match=r"resources.disk_mb is 8; the minimum is 16"):
        check_limits(settings, disk_mb=8)
    with pytest.raises(InvalidArgument, match=r"resources.disk_mb must be a whole number"):
        check_limits(settings, disk_mb="64")


def test_status_and_paging() -> None:
    assert check_status("PAUSED") == "PAUSED"
    with pytest.raises(InvalidArgument, match="not one of RUNNING"):
        check_status("running")
    assert check_page(2, 100) == (2, 100)
    for page, limit in ((0, 10), (1, 0), (1, 101)):
        with pytest.raises(InvalidArgument):
            check_page(page, limit)


def test_the_screen_is_1280x800_unless_asked_and_both_bounds_are_inclusive() -> None:
    assert check_screen(None) == DEFAULT_SCREEN == Screen(1280, 800)
    assert check_screen({"width": 1023, "height": 767}) == Screen(1023, 767)  # Xvfb takes odd sizes
    assert check_screen({"width": 320, "height": 240}) == Screen(320, 240)
    assert check_screen({"width": 7680, "height": 4320}) == Screen(7680, 4320)


@pytest.mark.parametrize(
    ("screen", "message"),
    [
        (
            {"width": 319, "height": 800},
            "screen.width must be a whole number of pixels from 320 to 7680, not 319",
        ),
        (
            {"width": 1280, "height": 4321},
            "screen.height must be a whole number of pixels from 240 to 4320, not 4321",
        ),
        ({"width": 1024.0, "height": 768}, "screen.width .* not 1024.0"),
        ({"width": True, "height": 768}, "screen.width .* not True"),
        ({"width": "1024", "height": 768}, "screen.width .* not '1024'"),
        ({"width": 1024}, "screen must be an object"),
        ({"width": 1024, "height": 768, "depth": 24}, "screen must be an object"),
        ("1024x768", "screen must be an object"),
    ],
)
def test_a_bad_screen_is_refused_naming_the_value(screen: object, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        check_screen(screen)


def test_runtime_default_allowed_and_refused() -> None:
    settings = Settings()
    assert check_runtime(settings, None) == "runc"
    assert check_runtime(settings, "gvisor") == "gvisor"
    assert check_runtime(Settings(default_runtime="gvisor"), None) == "gvisor"
    with pytest.raises(InvalidArgument, match="runc, gvisor"):
        check_runtime(settings, "kata")
    with pytest.raises(InvalidArgument, match="COVE_ALLOWED_RUNTIMES"):
        check_runtime(Settings(allowed_runtimes="runc"), "gvisor")
    with pytest.raises(InvalidArgument, match="runtime must be one of"):
        check_runtime(settings, ["gvisor"])
