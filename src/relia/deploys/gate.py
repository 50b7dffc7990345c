"""The release gate, asked before a deployment starts (``pre_deploy``) and again before the switch
(``pre_switch``). The gate belongs to the policy domain (``relia.policy.service.check_gate``), built separately;
until it is installed every release is allowed and the step log says the gate was not consulted."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, is_dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from relia.core.auth import Principal

GateCheck = Callable[..., Any]


def gate_function() -> GateCheck | None:
    """The policy domain's ``check_gate``, built separately; until it is installed every release is allowed (and
    the step log says the gate was not consulted)."""
    try:
        module = importlib.import_module("relia.policy.service")
    except ModuleNotFoundError as exc:
        if exc.name in ("relia.policy", "relia.policy.service"):
            return None
        raise
    return getattr(module, "check_gate", None)


def _reason_text(reason: Any) -> str:
    if isinstance(reason, str):
        return reason
    if isinstance(reason, dict):
        return str(reason.get("message") or reason.get("summary") or reason.get("detail") or reason)
    for name in ("message", "summary", "detail", "text"):
        value = getattr(reason, name, None)
        if isinstance(value, str) and value:
            return value
    return str(reason)


def _reason_data(reason: Any) -> Any:
    if isinstance(reason, str | int | float | bool) or reason is None:
        return reason
    if hasattr(reason, "model_dump"):
        return reason.model_dump(mode="json")
    if is_dataclass(reason) and not isinstance(reason, type):
        return {key: _reason_data(value) for key, value in asdict(reason).items()}
    if isinstance(reason, dict):
        return {str(key): _reason_data(value) for key, value in reason.items()}
    if isinstance(reason, list | tuple):
        return [_reason_data(item) for item in reason]
    return str(reason)


@dataclass(frozen=True)
class GateAnswer:
    decision: str  # allow, warn or block
    reasons: list[str]
    data: list[Any]
    consulted: bool


def check_gate(
    session: Session,
    *,
    actor: Principal,
    service_slug: str,
    version: str,
    change_type: str,
    phase: str,
    now: datetime,
) -> GateAnswer:
    check = gate_function()
    if check is None:
        return GateAnswer("allow", ["no release gate is installed (the policy module is absent)"], [], False)
    answer = check(
        session, actor=actor, service=service_slug, version=version, change_type=change_type, now=now, phase=phase
    )
    reasons = list(getattr(answer, "reasons", None) or [])
    return GateAnswer(
        str(answer.decision), [_reason_text(r) for r in reasons], [_reason_data(r) for r in reasons], True
    )
