"""The application factory: one FastAPI app serving the API under /api/v1, the web UI, and /healthz,
/readyz, /metrics. Each domain contributes a router; nothing here knows a domain's rules."""

from __future__ import annotations

import hashlib
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry, ProcessCollector

from relia import __version__, domains
from relia.alerting import api as alerting_api
from relia.api import ops, problems, records
from relia.api.deps import PrincipalCache
from relia.api.middleware import RequestContextMiddleware
from relia.catalog import api as catalog_api
from relia.config import api as config_api
from relia.core.auth import TokenVerifier
from relia.core.clock import Clock, SystemClock
from relia.core.db import Database
from relia.core.generations import GenerationCache, RenderCache
from relia.core.settings import Settings
from relia.deploys import api as deploys_api
from relia.escalation import api as escalation_api
from relia.notify import api as notify_api
from relia.oncall import api as oncall_api
from relia.policy import api as policy_api
from relia.slo import api as slo_api
from relia.worker.queue import WorkerWaker, make_huey

API_PREFIX = "/api/v1"
STATIC_DIR = Path(__file__).resolve().parent.parent / "web" / "static"

DOMAIN_ROUTERS: list[APIRouter] = [
    catalog_api.router,
    config_api.router,
    records.router,
    slo_api.router,
    deploys_api.router,
    policy_api.router,
    alerting_api.router,
    oncall_api.router,
    escalation_api.router,
    notify_api.router,
]

DESCRIPTION = """
Relia keeps a growing product reliable: SLOs and error budgets, release gates, on-call and paging.

Authenticate with `Authorization: Bearer <token>` (create one with `relia tokens create` or on the
Tokens page). Errors are RFC 9457 problem+json with the path of each bad field. Lists use cursor
pagination (`limit`, `cursor`, `nextCursor`). Updates take `If-Match: "<version>"` (or `version` in the
body); a stale one gets 412 (or 409) instead of overwriting someone else's change.
"""


def create_app(
    settings: Settings | None = None,
    *,
    db: Database | None = None,
    clock: Clock | None = None,
    local_operator: bool = False,
) -> FastAPI:
    """``local_operator`` is only for the CLI's in-process client: a caller without credentials is then the
    operator who already holds the database. A served app never sets it."""
    domains.load_config_kinds()
    domains.load_jobs()
    settings = settings or Settings()
    app = FastAPI(
        title="Relia",
        version=__version__,
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        responses=problems.COMMON_RESPONSES,
    )
    app.state.settings = settings
    app.state.db = db or Database(settings.effective_database_url)
    app.state.clock = clock or SystemClock()
    app.state.local_operator = local_operator
    app.state.queue = make_huey(settings)
    app.state.worker_waker = WorkerWaker(app.state.queue)
    secret = settings.effective_secret_key.encode()
    app.state.token_verifier = TokenVerifier(hashlib.sha256(b"token-cache:" + secret).digest())
    app.state.render_cache = RenderCache()
    app.state.generation_cache = GenerationCache(app.state.db)
    app.state.principal_cache = PrincipalCache(hashlib.sha256(b"principal-cache:" + secret).digest())
    app.state.metrics_registry = registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    registry.register(ops.EngineCollector(app.state))

    problems.install(app)
    app.add_middleware(
        RequestContextMiddleware,
        registry=registry,
        max_body_bytes=settings.max_request_bytes,
        large_body_paths={
            f"{API_PREFIX}/config/": 16 * settings.max_request_bytes,
            # A storm's Alertmanager message can hold thousands of alerts; refusing it (413) loses them all.
            f"{API_PREFIX}/integrations/": 8 * settings.max_request_bytes,
        },
    )

    app.include_router(ops.router)
    for router in DOMAIN_ROUTERS:
        app.include_router(router, prefix=API_PREFIX)
    app.include_router(alerting_api.pagerduty_router)  # PagerDuty's path, outside /api/v1

    from relia.alerting import pages as alerting_pages
    from relia.deploys import pages as deploys_pages
    from relia.escalation import pages as escalation_pages
    from relia.notify import pages as notify_pages
    from relia.oncall import pages as oncall_pages
    from relia.policy import pages as policy_pages
    from relia.slo import pages as slo_pages
    from relia.web import pages

    app.include_router(pages.router, include_in_schema=False)
    app.include_router(slo_pages.router, include_in_schema=False)
    app.include_router(deploys_pages.router, include_in_schema=False)
    app.include_router(escalation_pages.router, include_in_schema=False)
    app.include_router(notify_pages.router, include_in_schema=False)
    app.include_router(policy_pages.router, include_in_schema=False)
    app.include_router(alerting_pages.router, include_in_schema=False)
    app.include_router(oncall_pages.router, include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC_DIR, check_dir=False), name="static")
    app.openapi = lambda: _openapi_with_security(app)  # type: ignore[method-assign]
    return app


SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "An API token (`relia tokens create`)"},
    "session": {"type": "apiKey", "in": "cookie", "name": "relia_session", "description": "A web sign-in"},
}


def _openapi_with_security(app: FastAPI) -> dict:
    """Every operation needs a bearer token or a browser session unless it says otherwise with
    ``openapi_extra=NO_CREDENTIALS`` (health probes; intake and calendar routes, whose URL holds the secret)."""
    if app.openapi_schema is None:
        schema = FastAPI.openapi(app)
        schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
        schema["security"] = [{"bearer": []}, {"session": []}]
    return app.openapi_schema
