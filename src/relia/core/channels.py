"""Outbox channels every deployment has: a generic HTTP webhook (JSON POST)."""

from __future__ import annotations

from typing import Any

import httpx2

from relia import __version__
from relia.core.outbox import DeliveryFailed, register_channel

WEBHOOK_TIMEOUT = httpx2.Timeout(10.0, connect=5.0)


def deliver_webhook(destination: str, payload: dict[str, Any]) -> str:
    headers = {"User-Agent": f"relia/{__version__}", "Content-Type": "application/json"}
    idempotency_key = payload.get("idempotencyKey")
    if isinstance(idempotency_key, str):
        headers["Idempotency-Key"] = idempotency_key
    try:
        response = httpx2.post(destination, json=payload, headers=headers, timeout=WEBHOOK_TIMEOUT)
    except httpx2.HTTPError as exc:
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc
    if response.status_code >= 500 or response.status_code == 429:
        raise DeliveryFailed(f"HTTP {response.status_code}")
    if response.status_code >= 400:
        raise DeliveryFailed(f"HTTP {response.status_code}: {response.text[:200]}", permanent=True)
    return f"HTTP {response.status_code}"


register_channel("webhook", deliver_webhook)
