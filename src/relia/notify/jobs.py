"""Worker entry points of the notification domain: the ``apprise`` outbox channel and the pipeline watchdog.

The channel turns an outbox message into one apprise notification: email through the configured SMTP server,
Slack, Teams, Discord, ntfy, JSON webhooks or any apprise URL. The watchdog runs after every engine tick: it
pings the heartbeat URL when the pipeline is on time (an outside monitor notices when the pings stop: a dead
worker, a hung tick), and tells the configured apprise URLs directly, not through the outbox, when due timers or
messages are overdue.
"""

from __future__ import annotations

import re
import threading
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx2
import structlog

from relia import __version__
from relia.core.clock import Clock
from relia.core.db import Database
from relia.core.engine import tick_step
from relia.core.outbox import DeliveryFailed, register_channel
from relia.notify import rules, service
from relia.notify.settings import NotifySettings, notify_settings

log = structlog.get_logger("relia.notify")

_STATUS_IN_LOG = re.compile(r"error=(\d{3})")
# A 4xx from a chat or webhook service means the address is wrong or revoked: retrying cannot help, except for
# these, which mean "later".
_RETRYABLE_4XX = {408, 425, 429}


def _scheme(url: str) -> str:
    return urlsplit(url).scheme.lower() or "unknown"


def send_apprise(url: str, title: str, body: str) -> tuple[bool, str, bool]:
    """Send one notification through apprise: (ok, detail, permanent failure). apprise reports failures as log
    lines on its result; the last warnings become the detail (they name the service and the HTTP status, not the
    address), and a 4xx status in them makes the failure permanent."""
    import apprise  # imported on first use: loading its plugins costs a quarter of a second

    notifier = apprise.Apprise()
    if not notifier.add(url):
        return False, f"apprise does not understand this {_scheme(url)}:// address", True
    result = notifier.notify(title=title, body=body, body_format=apprise.NotifyFormat.TEXT)
    if result:
        return True, f"handed to {_scheme(url)}", False
    warnings = [entry.message for entry in result.logs() if str(entry.level) in ("WARNING", "ERROR")]
    detail = "; ".join(warnings[-3:]) or f"apprise reported {result.status.name}"
    found = _STATUS_IN_LOG.search(detail)
    code = int(found.group(1)) if found else None
    permanent = code is not None and 400 <= code < 500 and code not in _RETRYABLE_4XX
    return False, f"{_scheme(url)}: {detail}", permanent


def deliver_apprise(destination: str, payload: dict[str, Any]) -> str:
    """The outbox channel: raises DeliveryFailed so the outbox records the attempt and retries with backoff."""
    settings = notify_settings()
    key = payload.get("idempotencyKey")
    url = rules.apprise_url(destination, smtp=settings.smtp, idempotency_key=key if isinstance(key, str) else None)
    ok, detail, permanent = send_apprise(url, str(payload.get("title", "")), str(payload.get("body", "")))
    if not ok:
        raise DeliveryFailed(detail, permanent=permanent)
    items = payload.get("items") or []
    return detail + (f" ({len(items)} pages in one message)" if len(items) > 1 else "")


register_channel(service.CHANNEL, deliver_apprise)


class HeartbeatPinger:
    """Pings the watchdog URL in a background thread, so a slow monitoring service never slows the tick down;
    the result is saved with the next watchdog check. At most one ping is in flight."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._busy = False
        self._last: tuple[datetime, str] | None = None

    def take_result(self) -> tuple[datetime, str] | None:
        with self._lock:
            last, self._last = self._last, None
            return last

    def ping(self, url: str, at: datetime) -> None:
        with self._lock:
            if self._busy:
                return
            self._busy = True
        threading.Thread(target=self._run, args=(url, at), name="relia-watchdog-ping", daemon=True).start()

    def _run(self, url: str, at: datetime) -> None:
        try:
            response = httpx2.get(url, timeout=5.0, headers={"User-Agent": f"relia/{__version__}"})
            result = f"HTTP {response.status_code}"
        except httpx2.HTTPError as exc:
            result = f"{type(exc).__name__}: {exc}"
        with self._lock:
            self._last, self._busy = (at, result), False


pinger = HeartbeatPinger()


def watchdog(db: Database, clock: Clock, settings: NotifySettings | None = None) -> str:
    settings = settings or notify_settings()
    now = clock.now()
    with db.transaction() as session:
        decision = service.watchdog_check(session, now=now, settings=settings, ping_result=pinger.take_result())
    if decision.announce is not None:
        log.warning("paging.watchdog", announce=decision.announce, **decision.health.model_dump(mode="json"))
        targets = settings.watchdog_targets
        results = []
        for url in targets:
            ok, detail, _ = send_apprise(url, decision.title, decision.body)
            results.append(f"{_scheme(url)}: {'sent' if ok else detail}")
        with db.transaction() as session:
            service.record_watchdog_alert(session, result="; ".join(results) or "no RELIA_WATCHDOG_NOTIFY configured")
    if decision.health.status == "ok" and settings.watchdog_url:
        pinger.ping(settings.watchdog_url, now)
    return decision.health.status


# After the outbox (90): the check sees what this tick delivered.
tick_step("paging.watchdog", order=95)(lambda db, clock: watchdog(db, clock))
