"""What a tool's answer may take on the agent's wire, and how output is cut to fit.

A tool answers text that travels as one protocol line, JSON-escaped at least once and usually
twice (a tool that answers JSON is escaped again in the line), so a byte of output can take up to
13 bytes there (a NUL becomes \\u0000, then \\\\u0000 ...). Limits counted in raw bytes therefore do
not bound the line; everything here counts the escaped size instead.
"""

from . import protocol, wire_json

ANSWER_BUDGET_BYTES = protocol.MAX_LINE_BYTES - 1024 * 1024
"""What a tool's text may take once escaped in its answer line (the envelope gets the rest)."""
WIRE_BUDGET_BYTES = protocol.MAX_LINE_BYTES // 2 - 64 * 1024
"""What each of two output streams in one JSON answer may take on the wire once escaped."""
SEPARATOR_BYTES = 2
"""What a string in a list takes on the wire beyond its own wire_size (a comma and a space)."""


def line_size(text: str) -> int:
    """Bytes a tool's text takes in its answer line, escaped once by the protocol."""
    return len(wire_json.dumps(text))


def wire_size(text: str) -> int:
    """Bytes `text` takes on the wire as a string inside a tool's JSON answer: escaped there, then
    again in the protocol line (a NUL, 1 byte of output, becomes 7)."""
    return len(wire_json.dumps(wire_json.dumps(text, ensure_ascii=False)))


def cut_to_fit(data: bytes, budget: int, keep_end: bool = False) -> tuple[str, int]:
    """`data` as text, cut where its wire size would pass `budget`; and how many bytes were cut.

    Keeps the start of `data`, or its end with keep_end (for output whose newest bytes matter most).
    """
    kept = len(data)
    text = data.decode(errors="replace")
    while (size := wire_size(text)) > budget and kept:
        kept = kept * budget // size
        text = (data[len(data) - kept :] if keep_end else data[:kept]).decode(errors="replace")
    return text, len(data) - kept


def cut_text(text: str, budget: int) -> tuple[str, int]:
    """`text`, unchanged if it fits `budget` on the wire, else cut as cut_to_fit does."""
    if wire_size(text) <= budget:
        return text, 0
    return cut_to_fit(text.encode(errors="surrogatepass"), budget)


def fit_chunks(chunks: list[str], budget: int) -> tuple[list[str], int]:
    """The leading chunks of a list of output strings that fit `budget` on the wire, the last one cut;
    and how many bytes (of their UTF-8) were left out."""
    kept: list[str] = []
    dropped = 0
    for chunk in chunks:
        if budget <= SEPARATOR_BYTES:
            dropped += len(chunk.encode(errors="surrogatepass"))
            continue
        text, cut = cut_text(chunk, budget - SEPARATOR_BYTES)
        kept.append(text)
        dropped += cut
        budget -= wire_size(text) + SEPARATOR_BYTES
    return kept, dropped
