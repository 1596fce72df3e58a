"""Signed `/files` URLs are checked with the signature the E2B SDK itself makes."""

from __future__ import annotations

from e2b.sandbox.signature import get_signature
from hypothesis import given
from hypothesis import strategies as st

from cove.server.api.e2b.signed_files import file_signature


@given(
    path=st.text(),
    operation=st.sampled_from(["read", "write"]),
    user=st.none() | st.text(),
    token=st.text(min_size=1),
    expires_in=st.none() | st.integers(min_value=1, max_value=10**6),
)
def test_same_signature_as_the_sdk(
    path: str, operation: str, user: str | None, token: str, expires_in: int | None
) -> None:
    made = get_signature(path, operation, user, token, expires_in)  # type: ignore[arg-type]
    expiration = str(made["expiration"]) if made["expiration"] else None
    assert file_signature(path, operation, user or "", token, expiration) == made["signature"]
