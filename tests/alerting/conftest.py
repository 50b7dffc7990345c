"""Alerting fixtures: the small test organisation with an Alertmanager integration on `checkout`."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.alerting.support import make_integration
from tests.api.conftest import captured_logs, live_server  # noqa: F401  (shared fixtures)


@dataclass
class Intake:
    key: str
    name: str = "prometheus"


@pytest.fixture
def intake(db, clock, org) -> Intake:  # type: ignore[no-untyped-def]
    """An integration named ``prometheus`` whose default service is ``checkout`` (team payments)."""
    return Intake(key=make_integration(db, clock, "prometheus", "checkout"))
