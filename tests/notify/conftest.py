"""The paging fixtures (organisation on a local receiver, the alerting stand-in) shared with the escalation tests,
and an SMTP sink."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.escalation.conftest import alerting, fresh_notify_settings, paging_org, receiver  # noqa: F401
from tests.escalation.support import SmtpSink, smtp_sink_fixture


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    yield from smtp_sink_fixture()
