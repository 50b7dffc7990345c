"""Fixtures of the on-call tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from relia.api.app import create_app


@pytest.fixture
def operator_client(settings, db, clock) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    """The app as the CLI runs it locally: a caller without credentials is the local operator (no user)."""
    with TestClient(create_app(settings, db=db, clock=clock, local_operator=True)) as client:
        yield client
