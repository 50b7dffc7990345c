"""Helpers for the paging tests (escalation and notify): a stand-in for the alerting domain that emits its group
transitions, a local HTTP receiver for webhook deliveries, an SMTP sink, and builders for policies and users.

The alerting domain is built in parallel; until its models land, ``FakeAlerting`` emits exactly the hooks it
announced (``alert.group.opened`` and so on, with ``at`` from the test's clock) in a transaction of its own.
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sqlalchemy import select

from relia import domains
from relia.catalog import service as catalog
from relia.catalog.models import Service, User
from relia.catalog.schemas import UserUpdate
from relia.core import engine, hooks
from relia.core.clock import SimulatedClock
from relia.core.db import Database
from relia.escalation import service as escalation
from relia.escalation.schemas import EscalationPolicySpec
from relia.notify import service as notify
from relia.notify.schemas import NotificationRulesSpec
from tests.factories import OPERATOR

domains.load_jobs()
domains.load_config_kinds()

_group_ids = itertools.count(1000)


@dataclass
class FakeAlerting:
    """Emits the alerting domain's group transitions, as its service will, in one transaction each."""

    db: Database
    clock: SimulatedClock

    def open(self, service: str, *, group_id: int | None = None, title: str | None = None) -> int:
        group_id = group_id if group_id is not None else next(_group_ids)
        with self.db.transaction() as session:
            service_id = session.scalar(select(Service.id).where(Service.slug == service))
            extra = {"title": title} if title else {}
            hooks.emit(
                session, "alert.group.opened", group_id=group_id, service_id=service_id, at=self.clock.now(), **extra
            )
        return group_id

    def acknowledge(self, group_id: int, username: str | None = None) -> None:
        with self.db.transaction() as session:
            user_id = session.scalar(select(User.id).where(User.username == username)) if username else None
            hooks.emit(session, "alert.group.acknowledged", group_id=group_id, user_id=user_id, at=self.clock.now())

    def resolve(self, group_id: int) -> None:
        with self.db.transaction() as session:
            hooks.emit(session, "alert.group.resolved", group_id=group_id, user_id=None, at=self.clock.now())

    def snooze(self, group_id: int, until: datetime) -> None:
        with self.db.transaction() as session:
            hooks.emit(session, "alert.group.snoozed", group_id=group_id, until=until, at=self.clock.now())

    def reopen(self, group_id: int) -> None:
        with self.db.transaction() as session:
            hooks.emit(session, "alert.group.reopened", group_id=group_id, at=self.clock.now())


def tick(db: Database, clock: SimulatedClock) -> engine.TickReport:
    report = engine.run_tick(db, clock)
    assert report.errors == {}, report.errors
    return report


def make_policy(db: Database, clock: SimulatedClock, name: str, spec: dict[str, Any], actor=OPERATOR) -> None:
    with db.transaction() as session:
        escalation.upsert_policy(
            session, actor=actor, name=name, spec=EscalationPolicySpec.model_validate(spec), now=clock.now()
        )


def set_contacts(db: Database, clock: SimulatedClock, username: str, methods: list[dict[str, str]]) -> None:
    with db.transaction() as session:
        catalog.update_user(
            session,
            actor=OPERATOR,
            username=username,
            changes=UserUpdate.model_validate({"contactMethods": methods}),
            now=clock.now(),
        )


def set_rules(db: Database, clock: SimulatedClock, username: str, rules: list[dict[str, str]]) -> None:
    with db.transaction() as session:
        notify.set_rules(
            session,
            actor=OPERATOR,
            username=username,
            spec=NotificationRulesSpec.model_validate({"rules": rules}),
            now=clock.now(),
        )


# ------------------------------------------------------------------------------------------ HTTP receiver


@dataclass
class Received:
    path: str
    idempotency_key: str | None
    title: str
    message: str
    at: float


@dataclass
class Receiver:
    """A local HTTP server standing in for a webhook, Slack or ntfy endpoint. ``status[path]`` makes a path
    answer with that status (a list: one status per request, then 200); ``hold`` blocks a path's requests until
    ``release`` (to kill a worker while a delivery is in flight)."""

    server: ThreadingHTTPServer
    received: list[Received] = field(default_factory=list)
    status: dict[str, list[int]] = field(default_factory=dict)
    held: dict[str, threading.Event] = field(default_factory=dict)
    arrived: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def hold(self, path: str) -> threading.Event:
        self.held[path] = threading.Event()
        return self.held[path]

    def release(self) -> None:
        for event in self.held.values():
            event.set()

    def keys(self) -> list[str]:
        with self.lock:
            return [item.idempotency_key or "" for item in self.received]

    def on(self, path: str) -> list[Received]:
        with self.lock:
            return [item for item in self.received if item.path == path]

    def wait_for(self, count: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return
            time.sleep(0.01)
        raise AssertionError(f"received {len(self.received)} requests, expected {count}")


def start_receiver() -> Receiver:
    receiver: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            hold = receiver.held.get(self.path)
            with receiver.lock:
                receiver.received.append(
                    Received(
                        self.path,
                        self.headers.get("Idempotency-Key"),
                        str(body.get("title", "")),
                        str(body.get("message", "")),
                        time.monotonic(),
                    )
                )
                statuses = receiver.status.get(self.path)
                code = statuses.pop(0) if statuses else 200
            receiver.arrived.set()
            if hold is not None:
                hold.wait(60)
            self.send_response(code)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def do_GET(self) -> None:  # heartbeat pings
            with receiver.lock:
                receiver.received.append(Received(self.path, None, "GET", "", time.monotonic()))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver = Receiver(server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return receiver


def receiver_fixture() -> Iterator[Receiver]:
    receiver = start_receiver()
    try:
        yield receiver
    finally:
        receiver.release()
        receiver.server.shutdown()
        receiver.server.server_close()


@dataclass
class SmtpSink:
    """aiosmtpd on 127.0.0.1: every message it accepted, as (from, recipients, parsed message)."""

    port: int
    messages: list[tuple[str, list[str], Any]] = field(default_factory=list)

    def wait_for(self, count: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.messages) < count:
            time.sleep(0.01)
        assert len(self.messages) >= count, f"got {len(self.messages)} emails, expected {count}"


def smtp_sink_fixture() -> Iterator[SmtpSink]:
    from email import message_from_bytes, policy

    from aiosmtpd.controller import Controller

    sink = SmtpSink(free_port())

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            parsed = message_from_bytes(envelope.content, policy=policy.default)
            sink.messages.append((envelope.mail_from, list(envelope.rcpt_tos), parsed))
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=sink.port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
