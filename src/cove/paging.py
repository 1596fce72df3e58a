"""One page of a listing (sessions, contexts, files), and the check on the page a client asks for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from cove.errors import InvalidArgument

T = TypeVar("T")
MAX_PAGE_SIZE = 100


def check_page(page: int, limit: int, maximum: int = MAX_PAGE_SIZE) -> tuple[int, int]:
    if page < 1:
        raise InvalidArgument(f"page is {page}; pages start at 1")
    if not 1 <= limit <= maximum:
        raise InvalidArgument(f"limit is {limit}; it must be between 1 and {maximum}")
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
