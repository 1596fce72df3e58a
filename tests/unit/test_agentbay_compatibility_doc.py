"""docs/agentbay-compatibility.md has a row for every public name of the official SDK's classes,
and every test it names exists and touches the method of its row."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest

from cove.server.api.agentbay import ACTIONS, NOT_YET

ROOT = Path(__file__).parents[2]
DOC = (ROOT / "docs" / "agentbay-compatibility.md").read_text()
SDK_TESTS = ast.parse((ROOT / "tests" / "integration" / "test_agentbay_sdk.py").read_text())

CLASSES = {
    # the name in the doc's table: (module under agentbay._sync / agentbay._async, sync class, async class)
    "AgentBay": ("agentbay", "AgentBay", "AsyncAgentBay"),
    "Session": ("session", "Session", "AsyncSession"),
    "Command": ("command", "Command", "AsyncCommand"),
    "FileSystem": ("filesystem", "FileSystem", "AsyncFileSystem"),
    "Code": ("code", "Code", "AsyncCode"),
    "ContextService": ("context", "ContextService", "AsyncContextService"),
    "ContextManager": ("context_manager", "ContextManager", "AsyncContextManager"),
    "Oss": ("oss", "Oss", "AsyncOss"),
}
STATUS = re.compile(r"works|not supported yet|not yet \(not covered by a test yet\)|not applicable \(.+\)")
TEST_REFERENCE = re.compile(r"test_agentbay_sdk\.py::(\w+)")


def public_names(package: str, module: str, class_name: str) -> set[str]:
    """Public methods and properties, as inspect.getmembers finds them (class constants left out)."""
    cls = getattr(importlib.import_module(f"agentbay.{package}.{module}"), class_name)
    kinds = (property, staticmethod, classmethod)
    members = {name: inspect.getattr_static(cls, name) for name, _ in inspect.getmembers(cls)}
    return {
        name
        for name, member in members.items()
        if not name.startswith("_") and (inspect.isfunction(member) or isinstance(member, kinds))
    }


def rows() -> list[tuple[str, str, str, str]]:
    """(class, method, status, note) of each table row whose first cell is one of the SDK classes."""
    found = []
    for line in DOC.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0] in CLASSES:
            class_name, method, status, note = cells
            found.append((class_name, method.strip("`"), status, note))
    return found


def sdk_tests() -> dict[str, ast.AST]:
    """The test functions of tests/integration/test_agentbay_sdk.py, by name."""
    return {
        node.name: node
        for node in SDK_TESTS.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_")
    }


@pytest.mark.parametrize("class_name", CLASSES)
def test_every_public_name_has_one_row(class_name: str) -> None:
    module, sync_class, async_class = CLASSES[class_name]
    names = public_names("_sync", module, sync_class)
    documented = [method for name, method, _, _ in rows() if name == class_name]
    assert sorted(documented) == sorted(names), f"{class_name}: the rows and the SDK's names differ"
    assert public_names("_async", module, async_class) == names, "the doc says the async twins match"


def test_every_status_is_one_the_doc_defines() -> None:
    for class_name, method, status, _ in rows():
        assert STATUS.fullmatch(status), f"{class_name}.{method}: status {status!r}"


def test_every_named_test_exists() -> None:
    named = set(TEST_REFERENCE.findall(DOC))
    assert named, "the doc names no test"
    assert named <= set(sdk_tests()), f"no such tests: {named - set(sdk_tests())}"


def test_every_works_row_names_a_test_that_touches_its_method() -> None:
    tests = sdk_tests()
    for class_name, method, status, note in rows():
        named = TEST_REFERENCE.findall(note)
        if status == "works":
            assert named, f"{class_name}.{method} works but names no test"
        for test_name in named:
            assert test_name in tests, f"{class_name}.{method}: no test {test_name}"
            touched = {node.attr for node in ast.walk(tests[test_name]) if isinstance(node, ast.Attribute)}
            assert method in touched, f"{test_name} never calls {class_name}.{method}"


def test_every_action_the_surface_knows_is_listed() -> None:
    for name in {*ACTIONS, *NOT_YET}:
        assert f"`{name}`" in DOC, f"the action {name} is not in the RPC actions table"
