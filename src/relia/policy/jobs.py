"""The policy domain's worker entry point: evaluation after every SLO evaluation (the evaluator is step 40)."""

from __future__ import annotations

from sqlalchemy import text

from relia.core.clock import Clock
from relia.core.db import Database
from relia.core.engine import tick_step
from relia.policy import evaluation

# One evaluation at a time on PostgreSQL (SQLite's write transactions take turns anyway): two workers ticking at
# once would otherwise both start the same freeze. The other worker skips this tick; the next one catches up.
ADVISORY_LOCK_KEY = 0x504F4C49  # "POLI"


@tick_step("policy.evaluate", order=45)
def evaluate(db: Database, clock: Clock) -> object:
    with db.transaction() as session:
        if db.is_postgres and not session.scalar(
            text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY}
        ):
            return None
        return evaluation.evaluate(session, now=clock.now())
