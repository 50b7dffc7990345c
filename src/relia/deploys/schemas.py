"""Blue-green targets (a config kind and an API body), deployment requests, and the API's response models.

A service's target names its two environments (blue and green: an upstream address and a health URL each),
which one serves traffic, how traffic is switched (an adapter: ``command``, ``http`` or ``nginx``), what the
analysis checks before and after the switch, how promotion happens, and how long the old environment stays
warm after a successful switch.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from relia.core.schemas import ApiModel, OutModel, Slug, Text
from relia.deploys import rules

Duration = Annotated[
    str,
    StringConstraints(pattern=rules.DURATION_PATTERN, max_length=8),
    Field(description="A whole number of seconds (s), minutes (m), hours (h) or days (d), e.g. 30s, 5m, 1h"),
]
EnvironmentName = Literal["blue", "green"]
HttpUrl = Annotated[str, StringConstraints(pattern=r"^https?://[^\s/]+(/\S*)?$", max_length=2000)]
# One argument of a command: a program and its arguments are run without a shell, so nothing is interpreted.
Argument = Annotated[str, StringConstraints(min_length=1, max_length=4000)]
Command = Annotated[list[Argument], Field(min_length=1, max_length=100)]
# A host:port, [v6]:port or unix:/path for nginx's `server` line. Only these characters: anything else
# (spaces, ';', braces, '#') could add directives to the generated include file.
UPSTREAM_PATTERN = r"^(unix:/[A-Za-z0-9._/-]+|\[[0-9A-Fa-f:.]+\]:\d{1,5}|[A-Za-z0-9.-]+:\d{1,5})$"
Upstream = Annotated[
    str,
    StringConstraints(pattern=UPSTREAM_PATTERN, max_length=300),
    Field(description="host:port (or [v6]:port, unix:/path) that receives the environment's traffic"),
]
NGINX_NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$"
VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._+:/@-]{0,199}$"
VARIABLE_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,62}$")
Version = Annotated[
    str,
    StringConstraints(pattern=VERSION_PATTERN, max_length=200),
    Field(
        description="What is deployed: a tag, a commit, an image reference (letters, digits and ._+:/@-)",
        examples=["v2.14.0", "registry.example/checkout:2.14.0"],
    ),
]
ChangeType = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$", max_length=40),
    Field(description="For the release gate: feature, fix, config, dependency, security, p0-fix, rollback, ..."),
]


class EnvironmentSpec(ApiModel):
    upstream: Upstream
    health_url: HttpUrl | None = Field(
        default=None, description="Checked by `http` analysis checks that give no URL of their own"
    )


class EnvironmentsSpec(ApiModel):
    blue: EnvironmentSpec
    green: EnvironmentSpec

    def of(self, name: str) -> EnvironmentSpec:
        return self.blue if name == "blue" else self.green


# ------------------------------------------------------------------------------------------------- adapters


class _AdapterBase(ApiModel):
    timeout_seconds: Annotated[float, Field(gt=0, le=3600)] = Field(
        default=60.0, description="Each call (command run or webhook request) is stopped after this long"
    )
    retries: Annotated[int, Field(ge=0, le=10)] = Field(
        default=2, description="A failed call is tried again this many times (10 s, 20 s, 40 s ... apart)"
    )


class CommandAdapter(_AdapterBase):
    """Runs programs (no shell) with the deployment's variables in their environment (see docs/deploys.md)."""

    type: Literal["command"]
    switch: Command = Field(description="Moves live traffic to RELIA_TO_ENVIRONMENT (also used to roll back)")
    deploy: Command | None = Field(default=None, description="Puts RELIA_VERSION on the idle environment")
    retire: Command | None = Field(default=None, description="Scales down an environment no longer needed")
    working_directory: Annotated[str, StringConstraints(pattern=r"^/", max_length=1000)] | None = None


class HttpAdapter(_AdapterBase):
    """POSTs the deployment's variables as JSON, with an Idempotency-Key; any 2xx is done, 4xx is final."""

    type: Literal["http"]
    switch: HttpUrl
    deploy: HttpUrl | None = None
    retire: HttpUrl | None = None
    headers: Annotated[dict[str, Annotated[str, StringConstraints(max_length=4000)]], Field(max_length=20)] = Field(
        default_factory=dict, description="Sent with every call (e.g. Authorization); shown only to administrators"
    )
    timeout_seconds: Annotated[float, Field(gt=0, le=300)] = 30.0


class NginxAdapter(_AdapterBase):
    """Rewrites an include file atomically (temporary file, fsync, rename), checks the configuration with
    ``testCommand`` (put the previous file back if it fails), then runs ``reloadCommand``."""

    type: Literal["nginx"]
    upstream_file: Annotated[str, StringConstraints(pattern=r"^/[^\x00\n]*$", max_length=1000)] = Field(
        description="Absolute path of the file nginx includes"
    )
    upstream_name: Annotated[str, StringConstraints(pattern=NGINX_NAME_PATTERN)] | None = Field(
        default=None,
        description="With a name the file is a whole `upstream NAME { server ...; }` block (include it in the "
        "http block); without, just the `server ...;` line (include it inside your own upstream block)",
    )
    test_command: Command = Field(default_factory=lambda: ["nginx", "-t", "-q"])
    reload_command: Command = Field(default_factory=lambda: ["nginx", "-s", "reload"])
    deploy: Command | None = Field(default=None, description="A command that puts the version on the idle environment")
    retire: Command | None = None
    timeout_seconds: Annotated[float, Field(gt=0, le=600)] = 30.0


Adapter = Annotated[CommandAdapter | HttpAdapter | NginxAdapter, Field(discriminator="type")]


# ------------------------------------------------------------------------------------------------- analysis

Phases = Annotated[list[Literal["pre", "post"]], Field(min_length=1, max_length=2)]


class _CheckBase(ApiModel):
    name: Slug
    phases: Phases = Field(
        default_factory=lambda: ["pre", "post"],
        description="pre: before the switch, against the idle environment; post: after it, against the new live one",
    )
    failure_limit: Annotated[int, Field(ge=0, le=100)] = Field(default=0, description="Failures tolerated")
    consecutive_error_limit: Annotated[int, Field(ge=0, le=100)] = Field(
        default=4, description="Errors in a row tolerated (no answer, no data)"
    )
    inconclusive_limit: Annotated[int, Field(ge=0, le=100)] = Field(default=0, description="Inconclusives tolerated")
    dry_run: bool = Field(default=False, description="Measured and shown, never decides")

    @field_validator("phases")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("name each phase once")
        return value

    def limits(self, count: int) -> rules.Limits:
        return rules.Limits(
            count=count,
            failure_limit=self.failure_limit,
            consecutive_error_limit=self.consecutive_error_limit,
            inconclusive_limit=self.inconclusive_limit,
        )


def _templated(value: str | None) -> str | None:
    if value is None:
        return None
    unknown = rules.unknown_placeholders(value)
    if unknown:
        known = ", ".join("{{" + name + "}}" for name in rules.TEMPLATE_NAMES)
        raise ValueError(f"unknown placeholder(s) {', '.join(unknown)}; use {known}")
    return value


class HttpCheck(_CheckBase):
    """GET a URL of the environment: an expected status succeeds, another fails, no answer is an error."""

    type: Literal["http"]
    url: Annotated[str, StringConstraints(max_length=2000)] | None = Field(
        default=None, description="Default: the environment's healthUrl. May use {{environment}}, {{upstream}}, ..."
    )
    expect_status: Annotated[list[Annotated[int, Field(ge=100, le=599)]], Field(min_length=1, max_length=20)] = Field(
        default_factory=lambda: [200]
    )
    timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 5.0

    _url = field_validator("url")(_templated)


class PrometheusCheck(_CheckBase):
    """An instant PromQL query against a Prometheus data source; its single value is judged by the conditions."""

    type: Literal["prometheus"]
    data_source: Slug = Field(description="A DataSource of type prometheus")
    query: Annotated[str, StringConstraints(min_length=1, max_length=10_000)] = Field(
        description='May use {{environment}}, {{version}}, {{service}}, e.g. rate(errors{color="{{environment}}"}[1m])'
    )
    success_condition: Annotated[str, StringConstraints(max_length=40)] | None = Field(
        default=None, description="e.g. '< 0.01'"
    )
    failure_condition: Annotated[str, StringConstraints(max_length=40)] | None = Field(
        default=None, description="e.g. '>= 0.05'"
    )
    on_no_data: Literal["error", "inconclusive"] = Field(
        default="error", description="An empty answer is never success"
    )
    timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 10.0

    _query = field_validator("query")(_templated)

    @field_validator("success_condition", "failure_condition")
    @classmethod
    def _condition(cls, value: str | None) -> str | None:
        if value is not None:
            rules.parse_condition(value)
        return value

    @model_validator(mode="after")
    def _some_condition(self) -> PrometheusCheck:
        if self.success_condition is None and self.failure_condition is None:
            raise ValueError("give successCondition, failureCondition or both")
        return self


class SloBurnCheck(_CheckBase):
    """The burn rate of an SLO fed by pushed events, over a short window since the analysis started; at or above
    ``maxBurnRate`` fails; no events is an error (or inconclusive), never success."""

    type: Literal["sloBurn"]
    slo: Slug
    objective: Slug | None = Field(default=None, description="Default: the SLO's first objective")
    window: Duration = Field(default="5m", description="How far back each measurement looks (not before the run)")
    max_burn_rate: Annotated[float, Field(gt=0, le=100_000)] = Field(
        description="e.g. 2: the candidate may burn budget at most twice as fast as the SLO allows"
    )
    on_no_data: Literal["error", "inconclusive"] = "error"

    @field_validator("window")
    @classmethod
    def _positive(cls, value: str) -> str:
        if rules.parse_seconds(value) < 60:
            raise ValueError("the window is at least 1m (events are counted per minute)")
        return value


Check = Annotated[HttpCheck | PrometheusCheck | SloBurnCheck, Field(discriminator="type")]


class AnalysisSpec(ApiModel):
    interval: Duration = Field(default="30s", description="Between measurements")
    count: Annotated[int, Field(ge=1, le=100)] = Field(default=3, description="Measurements (not errors) per check")
    initial_delay: Duration = Field(default="0s", description="Before the first measurement of a run")
    on_inconclusive: Literal["pause", "fail"] = Field(
        default="pause", description="pause: wait for a person to promote, resume or abort; fail: abort or roll back"
    )
    checks: Annotated[list[Check], Field(max_length=20)] = Field(default_factory=list)

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: str) -> str:
        if rules.parse_seconds(value) < 1:
            raise ValueError("the interval is at least 1s")
        return value

    @model_validator(mode="after")
    def _unique(self) -> AnalysisSpec:
        names = [check.name for check in self.checks]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"check names must be unique; repeated: {', '.join(repeated)}")
        return self

    def checks_for(self, phase: str) -> list[HttpCheck | PrometheusCheck | SloBurnCheck]:
        return [check for check in self.checks if phase in check.phases]


class PromotionSpec(ApiModel):
    mode: Literal["automatic", "manual"] = Field(
        default="automatic", description="automatic: switch as soon as the pre-promotion analysis succeeds"
    )
    timeout: Duration = Field(default="1h", description="manual: how long to wait for a person")
    on_timeout: Literal["abort", "promote"] = Field(
        default="abort", description="manual: what happens when nobody decided in time (default: abort, fail closed)"
    )


class DeployTargetSpec(ApiModel):
    service: Slug
    description: Text = ""
    environments: EnvironmentsSpec
    live: EnvironmentName = Field(
        default="blue",
        description="The environment serving traffic when the target is created. Afterwards deployments move it; "
        "changing this value records a switch made outside Relia (no traffic moves).",
    )
    adapter: Adapter
    analysis: AnalysisSpec = Field(default_factory=AnalysisSpec)
    promotion: PromotionSpec = Field(default_factory=PromotionSpec)
    keep_warm: Duration = Field(
        default="10m", description="How long the old environment stays ready for a fast rollback after the switch"
    )

    @model_validator(mode="after")
    def _distinct_environments(self) -> DeployTargetSpec:
        if self.environments.blue.upstream == self.environments.green.upstream:
            raise ValueError("blue and green need different upstreams")
        for check in self.analysis.checks:
            if isinstance(check, HttpCheck) and check.url is None:
                missing = [name for name in ("blue", "green") if self.environments.of(name).health_url is None]
                if missing:
                    raise ValueError(
                        f"check {check.name!r} has no url and environment(s) {', '.join(missing)} have no healthUrl"
                    )
        return self

    @property
    def runs_host_programs(self) -> bool:
        """Whether the adapter runs programs or writes files on the worker's host (administrators only)."""
        return self.adapter.type in ("command", "nginx")


class DeployTargetCreate(DeployTargetSpec):
    name: Slug


# ---------------------------------------------------------------------------------------------- deployments


class DeploymentCreate(ApiModel):
    service: Slug
    version: Version
    change_type: ChangeType = "feature"
    variables: Annotated[dict[str, Annotated[str, StringConstraints(max_length=2000)]], Field(max_length=32)] = Field(
        default_factory=dict,
        description="Extra values for the adapter: RELIA_VAR_<NAME> for commands, `variables` for webhooks",
    )
    reason: Annotated[str, StringConstraints(max_length=2000)] = ""

    @field_validator("variables")
    @classmethod
    def _names(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not VARIABLE_NAME.match(name):
                raise ValueError(f"{name!r}: variable names are upper-case letters, digits and _ (e.g. IMAGE_DIGEST)")
            if "\x00" in text:
                raise ValueError(f"{name}: must not contain NUL characters")
        return value


class DeploymentAction(ApiModel):
    """Body of promote, abort and resume (optional)."""

    reason: Annotated[str, StringConstraints(max_length=2000)] = ""
    revision: int | None = Field(default=None, description="The deployment's revision you read; a stale one gets 409")


# ------------------------------------------------------------------------------------------------ outputs


class EnvironmentOut(OutModel):
    name: str
    upstream: str
    health_url: str | None
    version: str | None
    live: bool


class DeployTargetOut(OutModel):
    name: str
    service: str
    live: str
    environments: list[EnvironmentOut]
    active_deployment: int | None
    spec: dict[str, Any]
    version: int
    created_at: datetime
    updated_at: datetime


class StepOut(OutModel):
    at: datetime
    type: str
    summary: str
    actor: str | None
    state: str
    data: dict[str, Any]


class MeasurementOut(OutModel):
    at: datetime
    phase: str
    run: int
    check: str
    verdict: str
    value: float | None
    detail: str


class CheckStatusOut(OutModel):
    name: str
    type: str
    phase: str
    measurements: int
    dry_run: bool


class AnalysisOut(OutModel):
    phase: str
    run: int
    status: str
    started_at: datetime | None
    checks: list[CheckStatusOut]


class DeploymentOut(OutModel):
    id: int
    service: str
    target: str | None
    version: str
    previous_version: str | None
    change_type: str
    state: str
    outcome: str | None
    from_environment: str
    to_environment: str
    switched: bool
    paused_phase: str | None
    pause_reason: str | None
    pending_action: str | None
    promotion_mode: str
    promotion_deadline: datetime | None
    warm_until: datetime | None
    allowed_actions: list[str]
    variables: dict[str, str]
    message: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    revision: int = Field(
        description="Changes with every step; pass it back (or If-Match) so a stale decision is refused"
    )
    analysis: AnalysisOut | None = None
    steps: list[StepOut] | None = None
    measurements: list[MeasurementOut] | None = None
