"""The agent's JSON writes and reads exactly what the `json` package does, errors included."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cove.agent import wire_json

values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@given(values, st.booleans(), st.sampled_from([(", ", ": "), (",", ":")]))
def test_dumps_writes_what_json_writes(
    value: object, ensure_ascii: bool, separators: tuple[str, str]
) -> None:
    expected = json.dumps(value, ensure_ascii=ensure_ascii, separators=separators)
    assert wire_json.dumps(value, ensure_ascii=ensure_ascii, separators=separators) == expected


@given(values)
def test_loads_reads_what_json_reads(value: object) -> None:
    text = json.dumps(value, ensure_ascii=False)
    assert repr(wire_json.loads(text)) == repr(json.loads(text))
    assert repr(wire_json.loads(f" {text}\n".encode(errors="surrogatepass"))) == repr(json.loads(text))


@given(st.binary(max_size=40) | st.text(max_size=40).map(str.encode))
def test_loads_fails_or_succeeds_as_json_does(data: bytes) -> None:
    try:
        expected = repr(json.loads(data))
    except (ValueError, RecursionError) as error:
        with pytest.raises(type(error)) as raised:
            wire_json.loads(data)
        assert str(raised.value) == str(error)
    else:
        assert repr(wire_json.loads(data)) == expected


def test_a_value_json_cannot_hold_fails_as_in_json() -> None:
    with pytest.raises(TypeError, match="Object of type set is not JSON serializable"):
        wire_json.dumps({"a": {1}})
