"""The on-call domain's worker entry point: writing the shift history as time passes."""

from __future__ import annotations

from relia.core.clock import Clock
from relia.core.db import Database
from relia.core.engine import tick_step
from relia.oncall import service


@tick_step("oncall.history", order=20)
def record_history(db: Database, clock: Clock) -> object:
    """Catch up every schedule's shift history that is a minute or more behind (it is exact to the instant
    whenever it runs: the rows carry the schedule's own handoff times, not the tick's)."""
    now = clock.now()
    # Most ticks find nothing due: ask in a read transaction first, so they never take SQLite's write lock.
    with db.reader() as session:
        if not service.history_due(session, now=now):
            return 0
    with db.transaction() as session:
        return service.record_history_due(session, now=now)
