"""In-transaction domain hooks: one domain announces a change, others react in the same transaction.

Domains stay decoupled (alerting does not import escalation): the emitter names an event and hands over the
session; subscribers registered by ``relia.domains`` job or kind modules do their part, and everything commits
or rolls back together. Side effects outside the database still go through the outbox.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

Subscriber = Callable[..., None]
_subscribers: dict[str, list[Subscriber]] = defaultdict(list)


def subscribe(event: str) -> Callable[[Subscriber], Subscriber]:
    """``@subscribe("alert.group.opened")`` registers ``fn(session, **payload)``; registering the same
    function twice (a module imported again) keeps one."""

    def register(fn: Subscriber) -> Subscriber:
        known = _subscribers[event]
        if all(f"{s.__module__}.{s.__qualname__}" != f"{fn.__module__}.{fn.__qualname__}" for s in known):
            known.append(fn)
        return fn

    return register


def emit(session: Session, event: str, **payload: Any) -> None:
    """Call every subscriber of ``event`` in the caller's transaction; an exception rolls everything back."""
    for subscriber in list(_subscribers.get(event, ())):
        subscriber(session, **payload)


def subscribers(event: str) -> list[Subscriber]:
    return list(_subscribers.get(event, ()))
