"""The per-key bound on tool calls in flight: counted per tenant, refused past it, freed on any exit."""

from __future__ import annotations

from contextlib import ExitStack

import pytest

from cove.errors import QuotaExceeded
from cove.sessions.tenant_limits import TenantToolCalls


def test_past_the_limit_a_call_is_refused_and_other_tenants_are_not_counted() -> None:
    calls = TenantToolCalls(2)
    with ExitStack() as held:
        held.enter_context(calls.slot("a"))
        held.enter_context(calls.slot("a"))
        with pytest.raises(QuotaExceeded, match="COVE_TENANT_TOOL_CALLS") as refused:
            held.enter_context(calls.slot("a"))
        assert refused.value.http_status == 429
        with calls.slot("b"), calls.slot("b"):
            pass
    with calls.slot("a"), calls.slot("a"):  # both freed again
        pass


def test_a_call_that_fails_frees_its_slot() -> None:
    calls = TenantToolCalls(1)
    with pytest.raises(RuntimeError), calls.slot("a"):
        raise RuntimeError("the tool failed")
    with calls.slot("a"):
        pass
