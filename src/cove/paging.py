"""One page of a listing (sessions, contexts, files), and the check on the page a client asks for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from cove.errors import InvalidArgument

T = TypeVar("T")
MAX_PAGE_SIZE = 100
MAX_PAGE = 1_000_000
"""Pages past this are refused: their offset would overflow the database's integers long before any
listing is that long."""


def check_page(page: int, limit: int, maximum: int = MAX_PAGE_SIZE) -> tuple[int, int]:
    if not 1 <= page <= MAX_PAGE:
        raise InvalidArgument(f"page must be a whole number from 1 to {MAX_PAGE}")
    if not 1 <= limit <= maximum:
        raise InvalidArgument(f"limit must be a whole number from 1 to {maximum}")
    return page, limit


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    total_count: int
    page: int
    limit: int

    @property
    def next_page(self) -> int | None:
        return self.page + 1 if self.page * self.limit < self.total_count else None
