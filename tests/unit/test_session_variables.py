"""The session's environment variables as the agent reads them from the file the host writes
(which the sandbox could tamper with), and the environment its processes start with."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cove.agent import environment
from cove.errors import InvalidArgument
from cove.sessions.validation import MAX_ENV_BYTES, check_env

NOBODY = 65534
"""An owner other than the test's own, as the host's root appears inside a sandbox."""


def env_file(tmp_path: Path, text: str, owner: int = NOBODY) -> str:
    path = tmp_path / "env.json"
    path.write_text(text)
    os.chown(path, owner, owner)
    return str(path)


def test_the_hosts_variables_are_taken_but_cove_s_own_names(tmp_path: Path) -> None:
    text = json.dumps({"A": "1", "B": "two words", "COVE_AGENT": "x", "C": 3})
    assert environment.session_variables(env_file(tmp_path, text)) == {"A": "1", "B": "two words"}


@pytest.mark.parametrize("text", ["", "[]", '"A=1"', "{" + " " * environment.MAX_SESSION_ENV_BYTES + "}"])
def test_a_file_that_makes_no_sense_gives_none(tmp_path: Path, text: str) -> None:
    assert environment.session_variables(env_file(tmp_path, text)) == {}


def test_a_file_the_session_user_wrote_is_not_trusted(tmp_path: Path) -> None:
    assert environment.session_variables(env_file(tmp_path, '{"A": "1"}', owner=os.getuid())) == {}


def test_a_call_s_variables_win_over_the_session_s(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(environment, "SESSION_ENV_PATH", env_file(tmp_path, '{"A": "session", "B": "b"}'))
    monkeypatch.setenv("COVE_SECRET", "agent only")
    made = environment.user_environment({"A": "call"})
    assert (made["A"], made["B"]) == ("call", "b") and "COVE_SECRET" not in made


def test_check_env_takes_names_and_text() -> None:
    assert check_env(None) == {}
    assert check_env({"_A1": "x y", "b": ""}) == {"_A1": "x y", "b": ""}


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ([["A", "1"]], "env must be an object"),
        ({"A": 1}, "env must be an object"),
        ({"A-B": "1"}, "'A-B' is not a variable name"),
        ({"COVE_X": "1"}, "names starting with COVE_ are Cove's own"),
        ({"A": "a\0b"}, "the value of A must be text"),
        ({f"V{i}": "" for i in range(101)}, "at most 100"),
        ({"A": "x" * MAX_ENV_BYTES}, f"at most {MAX_ENV_BYTES}"),
    ],
)
def test_a_bad_env_is_refused_naming_it(env: object, words: str) -> None:
    with pytest.raises(InvalidArgument, match=words):
        check_env(env)
