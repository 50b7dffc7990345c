"""The one list of domain modules that plug into shared registries. A new domain adds its modules here:
its config kinds (``kinds``) and its worker entry points (``jobs``: tick steps, timer handlers, channels)."""

from __future__ import annotations

import importlib

CONFIG_KIND_MODULES: list[str] = [
    "relia.catalog.kinds",
    "relia.slo.kinds",
    "relia.slo.openslo",
    "relia.slo.pyrra",
    "relia.slo.sloth",
    "relia.deploys.kinds",
    "relia.policy.kinds",
    "relia.oncall.kinds",
    "relia.escalation.kinds",
    "relia.notify.kinds",
    "relia.alerting.kinds",
]

JOB_MODULES: list[str] = [
    "relia.core.engine",
    "relia.core.channels",
    "relia.slo.jobs",
    "relia.deploys.jobs",
    "relia.policy.jobs",
    "relia.oncall.jobs",
    "relia.notify.jobs",
    "relia.escalation.jobs",
    "relia.alerting.jobs",
]


def load_config_kinds() -> None:
    for module in CONFIG_KIND_MODULES:
        importlib.import_module(module)


def load_jobs() -> None:
    for module in JOB_MODULES:
        importlib.import_module(module)
