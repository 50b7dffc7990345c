"""The release gate's hot path in the API: what it answers from, read for every service at once and kept.

CI pipelines ask the gate in bursts, and the answers repeat: a service's restrictions, overrides and budgets
change once a worker tick at most. ``GateInputCache`` keeps every service's ``GateInputs`` in one snapshot
under the generations it was read at: the gate's (``policy.service.GATE_GENERATION``: every policy evaluation
and override decision), the SLOs' (every SLO change and evaluator tick) and the services'. While
``core.generations.GenerationCache`` holds all three as fresh (at most a second, and only until this process
commits a change that bumps one), an answer needs no database at all. This process's own changes show at
once; another process's (the worker's tick) within about two seconds: once the second has passed, the snapshot
still answers for up to ``STALE_GRACE_SECONDS`` while a thread checks the generations and reads a new one if
they moved, so a tick makes no request wait for that read.

A snapshot is read whole, by one thread at a time, in a handful of queries: after each worker tick every
service's inputs change together, and reading them one service at a time (as each is asked) cost hundreds of
queries in the second after the tick. Approved overrides are kept with their expiry, so one that expires
between two reads stops counting on time.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime

import structlog

from relia.catalog.service import SERVICES_GENERATION
from relia.core.db import Database
from relia.core.generations import GenerationCache
from relia.policy.service import GATE_GENERATION, GateInputs, all_gate_inputs, unknown_service
from relia.slo.service import SLO_GENERATION

_GENERATIONS = (GATE_GENERATION, SLO_GENERATION, SERVICES_GENERATION)
log = structlog.get_logger("relia.policy.gate")


# How long after its generations were last confirmed a snapshot may still answer while a newer one is read in
# the background, when the change came from another process (this process's own changes are never served
# stale): a worker tick's changes so show within about two seconds, and the tick costs no request a wait.
STALE_GRACE_SECONDS = 2.0


@dataclass(frozen=True)
class _Snapshot:
    generations: tuple[int, ...]
    services: dict[str, GateInputs]
    local_commits: int  # this process's generation-bumping commits before it was read

    def inputs(self, slug: str) -> GateInputs:
        found = self.services.get(slug)
        if found is None:
            raise unknown_service(slug)
        return found


class GateInputCache:
    def __init__(self, db: Database, generations: GenerationCache) -> None:
        self._db = db
        self._generations = generations
        self._snapshot: _Snapshot | None = None
        self._confirmed_at = 0.0  # monotonic: when the snapshot's generations were last read as current
        self._loading = threading.Lock()
        self._refreshing = threading.Lock()

    def peek(self, slug: str, now: datetime) -> GateInputs | None:
        """The service's inputs without I/O (for the event loop), or None if the caller must ``load`` them.

        Current when every generation is fresh and the snapshot was read at them. Otherwise, if this process
        has changed nothing since the snapshot was read and it was confirmed current less than
        ``STALE_GRACE_SECONDS`` ago, it still answers while a thread reads the generations (and a new snapshot
        if they moved). Raises NotFound for an unknown service."""
        snapshot = self._snapshot
        if snapshot is None:
            return None
        fresh = tuple(self._generations.fresh(name) for name in _GENERATIONS)
        if fresh == snapshot.generations:
            return snapshot.inputs(slug)
        if snapshot.local_commits != self._db.local_commits:
            return None
        if time.monotonic() - self._confirmed_at >= STALE_GRACE_SECONDS:
            return None
        if self._refreshing.acquire(blocking=False):
            threading.Thread(target=self._refresh, args=(now,), name="gate-cache-refresh", daemon=True).start()
        return snapshot.inputs(slug)

    def load(self, slug: str, now: datetime) -> GateInputs:
        """The service's inputs as of now (blocking: a worker thread)."""
        return self._current(now).inputs(slug)

    def _refresh(self, now: datetime) -> None:
        try:
            self._current(now)
        except Exception:  # the next request that cannot be answered from the snapshot reads it and reports
            log.warning("gate.cache_refresh_failed", exc_info=True)
        finally:
            self._refreshing.release()

    def _current(self, now: datetime) -> _Snapshot:
        """Read the generations, then, if the snapshot is of older ones, every service's inputs. The
        generations are read first: a change committed in between makes the snapshot newer than its key, never
        older, so it is replaced at the next read rather than served stale."""
        with self._db.reader() as session:
            generations = tuple(self._generations.read(session, name) for name in _GENERATIONS)
        snapshot = self._snapshot
        if snapshot is None or snapshot.generations != generations:
            # One reader at a time: the requests arriving meanwhile wait for its snapshot, not a read each.
            with self._loading:
                snapshot = self._snapshot
                if snapshot is None or snapshot.generations != generations:
                    local_commits = self._db.local_commits
                    with self._db.reader() as session:
                        generations = tuple(self._generations.read(session, name) for name in _GENERATIONS)
                        snapshot = _Snapshot(generations, all_gate_inputs(session, now), local_commits)
                    self._snapshot = snapshot
        self._confirmed_at = time.monotonic()
        return snapshot
