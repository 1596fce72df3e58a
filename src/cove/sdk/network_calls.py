"""Calls of `session.network` (Cove's own: AgentBay has no per-session network policy).

Both answer the same shape, so one parser turns either into a NetworkResult.
"""

from __future__ import annotations

from typing import Any

from cove.sdk.core import Call, session_id_refusal, session_path
from cove.sdk.models import DeniedConnection, NetworkPolicy, NetworkResult


def _policy(raw: dict[str, Any]) -> NetworkPolicy:
    return NetworkPolicy(
        mode=raw.get("mode"),
        allow_out=list(raw.get("allow_out") or []),
        deny_out=list(raw.get("deny_out") or []),
    )


def _denied(raw: dict[str, Any]) -> DeniedConnection:
    return DeniedConnection(
        destination=raw["destination"],
        port=raw.get("port"),
        protocol=raw.get("protocol") or "",
        name=raw.get("name"),
        at=raw.get("at") or "",
    )


def parse_network(answer: dict[str, Any], request_id: str) -> NetworkResult:
    """GET's and PUT's answer: {session_id, policy, address, gateway, denied: {count, recent}}."""
    denied = answer.get("denied") or {}
    return NetworkResult(
        request_id=request_id,
        success=True,
        policy=_policy(answer["policy"]),
        address=answer.get("address"),
        gateway=answer.get("gateway"),
        denied_count=int(denied.get("count") or 0),
        denied=[_denied(raw) for raw in denied.get("recent") or []],
    )


def get(session_id: str) -> Call[NetworkResult]:
    return Call(
        method="GET",
        path=f"{session_path(session_id)}/network",
        refusal=session_id_refusal(session_id),
        result_type=NetworkResult,
        parse=parse_network,
    )


def update(session_id: str, policy: NetworkPolicy) -> Call[NetworkResult]:
    """Replace the whole policy: lists left empty become empty, a mode left out the server's default."""
    return Call(
        method="PUT",
        path=f"{session_path(session_id)}/network",
        body=policy.to_json(),
        refusal=session_id_refusal(session_id),
        result_type=NetworkResult,
        parse=parse_network,
    )
