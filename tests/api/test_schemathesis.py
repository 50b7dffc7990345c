"""Property-based: every operation in /openapi.json, called by an administrator with generated input (valid
and invalid), answers without a server error and as its schema says (status code, content type, body).

The operations are driven with ``operation.as_strategy()`` inside one test rather than with
``schemathesis.pytest.from_fixture``: that loader needs pytest internals (``Node._nodeid``) pytest 9 no longer
has, and the app under test only exists inside the fixtures (its database is per test).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from relia.worker.main import EngineLoop

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES_PER_OPERATION = 20


# SQLite only: on PostgreSQL every write commits to disk and the run takes minutes. The PostgreSQL-specific
# finding (NUL characters) has its own test in test_catalog_api.py.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_every_operation_conforms_to_its_schema(app, org, db, clock, mode: GenerationMode) -> None:
    EngineLoop(db=db, clock=clock, interval=5).tick_once()  # so /readyz answers 200, not its 503
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 25
    headers = org.headers("root:admin")
    failures: list[str] = []
    for operation in operations:

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            derandomize=True,
            database=None,
            deadline=None,
            # No shrinking: each step is another request against the database, and it can take minutes.
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def call(case) -> None:  # type: ignore[no-untyped-def]
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            call()
        except Unsatisfiable:
            # An operation without parameters or body has no invalid input to send.
            assert mode is GenerationMode.NEGATIVE and not _has_inputs(operation), operation.label
        except (Exception, FailureGroup) as exc:  # collect every operation's failure, not just the first
            failures.append(f"{operation.label}:\n{exc}")
    assert not failures, f"{len(failures)} operations failed:\n\n" + "\n\n".join(failures)


def _has_inputs(operation) -> bool:  # type: ignore[no-untyped-def]
    return bool(list(operation.iter_parameters()) or list(operation.body))
