"""Which files of a synced folder a sync moves: AgentBay's white lists (`bwList.whiteLists`).

Paths are relative to the synced folder; a leading "/" is its top, so the browser profile's
`/Default/Cookies` names `<path>/Default/Cookies`. A white list admits the files at or below its
`path` ("" or "/": all), except those at or below one of its `excludePaths`. Exclude paths may use
shell wildcards (`*.log`, `cache/*`: matched against the file's path and each folder above it), and
either kind may be a regular expression (`isPathRegex`, `isExcludeRegex`) matched whole against
the path with its leading "/". With several white lists, a file is synced if any admits it.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from cove.errors import InvalidArgument

MAX_WHITE_LISTS = 64
MAX_PATHS = 256
MAX_PATH_CHARS = 1024
_WILDCARD = re.compile(r"[*?\[\]]")


@dataclass(frozen=True)
class WhiteList:
    path: str = ""
    """Relative to the synced folder, without a leading "/" ("" is all), or a regex."""
    exclude_paths: tuple[str, ...] = ()
    is_path_regex: bool = False
    is_exclude_regex: bool = False

    def admits(self, relative: str) -> bool:
        """Whether the file at `relative` (no leading "/") is synced by this white list."""
        if self.is_path_regex:
            if not re.fullmatch(self.path, "/" + relative):
                return False
        elif not _at_or_below(relative, self.path):
            return False
        return not any(self._excludes(pattern, relative) for pattern in self.exclude_paths)

    def _excludes(self, pattern: str, relative: str) -> bool:
        if self.is_exclude_regex:
            return re.fullmatch(pattern, "/" + relative) is not None
        if _WILDCARD.search(pattern):
            names = relative.split("/")
            return any(fnmatch.fnmatchcase("/".join(names[:n]), pattern) for n in range(1, len(names) + 1))
        return _at_or_below(relative, pattern)


def _at_or_below(relative: str, folder: str) -> bool:
    return not folder or relative == folder or relative.startswith(folder + "/")


def check_relative(raw: object, field: str, *, wildcards: bool) -> str:
    """A policy path as "a/b" ("" for the synced folder's top); 400 naming `field` if it could leave it."""
    if not isinstance(raw, str):
        raise InvalidArgument(f"{field} must be a string: a path relative to the synced folder")
    if len(raw) > MAX_PATH_CHARS or "\0" in raw:
        raise InvalidArgument(f"{field} must be up to {MAX_PATH_CHARS} characters, without NUL")
    names = [name for name in raw.split("/") if name not in ("", ".")]
    if ".." in names:
        raise InvalidArgument(
            f"{field} {raw!r} must not contain '..': policy paths stay inside the synced folder"
        )
    if not wildcards and _WILDCARD.search(raw):
        raise InvalidArgument(
            f"{field} {raw!r} has wildcards (* ? [ ]); give an exact path, or set the matching isRegex flag"
        )
    return "/".join(names)


def _check_regex(raw: object, field: str) -> str:
    if not isinstance(raw, str) or not raw or len(raw) > MAX_PATH_CHARS:
        raise InvalidArgument(f"{field} must be a regular expression of 1 to {MAX_PATH_CHARS} characters")
    try:
        re.compile(raw)
    except re.error as error:
        raise InvalidArgument(f"{field} {raw!r} is not a valid regular expression: {error}") from None
    return raw


def _check_exclude(raw: object, field: str) -> str:
    path = check_relative(raw, field, wildcards=True)
    if not path:
        raise InvalidArgument(f"{field} must name a file or folder; an empty one would exclude everything")
    return path


def _check_flag(item: dict[str, object], key: str, field: str) -> bool:
    value = item.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidArgument(f"{field}.{key} must be true or false")
    return value


def check_white_list(raw: object, field: str) -> WhiteList:
    if not isinstance(raw, dict):
        raise InvalidArgument(f"{field} must be an object with path and excludePaths")
    unknown = set(raw) - {"path", "excludePaths", "isPathRegex", "isExcludeRegex"}
    if unknown:
        raise InvalidArgument(f"{field}.{sorted(unknown)[0]} is not a setting of a white list")
    path_regex = _check_flag(raw, "isPathRegex", field)
    exclude_regex = _check_flag(raw, "isExcludeRegex", field)
    path = raw.get("path") or ""
    excludes = raw.get("excludePaths") or []
    if not isinstance(excludes, list) or len(excludes) > MAX_PATHS:
        raise InvalidArgument(f"{field}.excludePaths must be a list of up to {MAX_PATHS} paths")
    return WhiteList(
        path=_check_regex(path, f"{field}.path")
        if path_regex
        else check_relative(path, f"{field}.path", wildcards=False),
        exclude_paths=tuple(
            _check_regex(item, f"{field}.excludePaths[{n}]")
            if exclude_regex
            else _check_exclude(item, f"{field}.excludePaths[{n}]")
            for n, item in enumerate(excludes)
        ),
        is_path_regex=path_regex,
        is_exclude_regex=exclude_regex,
    )


def check_white_lists(raw: object, field: str) -> tuple[WhiteList, ...]:
    """The white lists of a policy; one that admits everything with no exclusions drops them all."""
    if not isinstance(raw, list) or len(raw) > MAX_WHITE_LISTS:
        raise InvalidArgument(f"{field} must be a list of up to {MAX_WHITE_LISTS} white lists")
    white_lists = tuple(check_white_list(item, f"{field}[{n}]") for n, item in enumerate(raw))
    if any(white == WhiteList() for white in white_lists):
        return ()  # the SDK's default: everything
    return white_lists
