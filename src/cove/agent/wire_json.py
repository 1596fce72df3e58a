"""JSON as the `json` package writes and reads it, through its C accelerator alone.

Importing `json` compiles regular expressions at once, which brings `re` and `enum` along: about
1 MiB of an agent that otherwise runs one command. The accelerator (`_json`, what `json` itself
calls) needs none of it. Whatever the fast path does not take exactly as `json` would (a document
that is not plain UTF-8, a value JSON cannot hold, malformed input) goes to `json`, so results and
errors are `json`'s own.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

try:
    _accelerator: Any = __import__("_json")
except ImportError:  # an interpreter without it: the package does it all
    _accelerator = None

WHITESPACE = " \t\n\r"
CONSTANTS = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}


def _cannot_encode(value: object) -> object:
    raise TypeError  # the caller asks `json` again, for its own error


class _Reading:
    """The settings the C scanner reads, those of json.loads without arguments."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = CONSTANTS.__getitem__


_scan = _accelerator.make_scanner(_Reading()) if _accelerator is not None else None


def dumps(value: Any, *, ensure_ascii: bool = True, separators: tuple[str, str] = (", ", ": ")) -> str:
    """json.dumps(value, ensure_ascii=..., separators=...)."""
    if _accelerator is not None:
        escape = _accelerator.encode_basestring_ascii if ensure_ascii else _accelerator.encode_basestring
        item_separator, key_separator = separators
        encode = _accelerator.make_encoder(
            {}, _cannot_encode, escape, None, key_separator, item_separator, False, False, True
        )
        try:
            return "".join(encode(value, 0))
        except (TypeError, ValueError, RecursionError):
            pass
    import json

    return json.dumps(value, ensure_ascii=ensure_ascii, separators=separators)


def loads(data: str | bytes) -> Any:
    """json.loads(data)."""
    if _scan is not None:
        text = _plain_text(data)
        if text is not None:
            start = len(text) - len(text.lstrip(WHITESPACE))
            try:
                value, end = _scan(text, start)
            except (StopIteration, ValueError, RecursionError):
                pass
            else:
                if not text[end:].strip(WHITESPACE):
                    return value
    import json

    return json.loads(data)


def _plain_text(data: str | bytes) -> str | None:
    """`data` as text if json.loads would read it as UTF-8 without a byte order mark, else None."""
    if isinstance(data, str):
        return None if data.startswith("\ufeff") else data
    if data.startswith(b"\xef\xbb\xbf") or 0 in data[:4]:
        return None
    try:
        return data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return None
