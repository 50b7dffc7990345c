"""Switch adapters: how a deployment reaches the outside world. Each action (deploy, switch, rollback, retire)
is one call that either returns a short detail or raises ``AdapterError``; the action runner calls them with no
database transaction open and records the result.

The contract every adapter keeps:

- **Idempotent.** A call may be repeated (a retry, or a worker that died before recording the result): moving
  traffic to the environment that already has it, or deploying the version already deployed, must succeed.
- **Bounded.** Each call stops after the adapter's ``timeoutSeconds``; a program that runs longer is killed with
  its whole process group.
- **Honest about permanence.** ``AdapterError(permanent=True)`` for what a retry cannot fix (a missing program,
  an HTTP 4xx, a configuration nginx refuses); anything else is retried.

``command`` runs a program without a shell, in a minimal environment (PATH, HOME, LANG, LC_ALL, TZ, TMPDIR of
the worker, never its RELIA_* settings) plus the deployment's variables (``ActionContext.environment_variables``).
``http`` POSTs ``ActionContext.body()`` as JSON with an ``Idempotency-Key``. ``nginx`` writes the upstream
include file atomically, checks the configuration, puts the previous file back if the check fails, and reloads.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2

from relia import __version__
from relia.deploys.schemas import CommandAdapter, HttpAdapter, NginxAdapter

# Variables of the worker's own environment that commands may need; nothing else is passed on (the worker's
# environment holds the database URL and the secret key).
INHERITED_VARIABLES = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
OUTPUT_CHARS = 2000


class AdapterError(Exception):
    def __init__(self, detail: str, *, permanent: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.permanent = permanent


@dataclass(frozen=True)
class ActionContext:
    """Everything an adapter call knows about the deployment. ``environment`` is the one the action is about
    (deploy and switch: the new one; rollback: the old one; retire: the one being retired); ``live`` is the
    environment serving traffic once the action succeeded."""

    action: str
    deployment_id: int
    service: str
    target: str
    version: str
    previous_version: str | None
    environment: str
    live: str
    new_environment: str
    old_environment: str
    upstreams: dict[str, str]
    attempt: int = 1
    variables: dict[str, str] = field(default_factory=dict)

    @property
    def idempotency_key(self) -> str:
        return f"relia-deployment-{self.deployment_id}-{self.action}"

    def environment_variables(self) -> dict[str, str]:
        values = {
            "RELIA_ACTION": self.action,
            "RELIA_DEPLOYMENT_ID": str(self.deployment_id),
            "RELIA_SERVICE": self.service,
            "RELIA_TARGET": self.target,
            "RELIA_VERSION": self.version,
            "RELIA_PREVIOUS_VERSION": self.previous_version or "",
            "RELIA_ENVIRONMENT": self.environment,
            "RELIA_UPSTREAM": self.upstreams[self.environment],
            "RELIA_LIVE_ENVIRONMENT": self.live,
            "RELIA_LIVE_UPSTREAM": self.upstreams[self.live],
            "RELIA_NEW_ENVIRONMENT": self.new_environment,
            "RELIA_OLD_ENVIRONMENT": self.old_environment,
            "RELIA_BLUE_UPSTREAM": self.upstreams["blue"],
            "RELIA_GREEN_UPSTREAM": self.upstreams["green"],
            "RELIA_ATTEMPT": str(self.attempt),
            "RELIA_IDEMPOTENCY_KEY": self.idempotency_key,
        }
        values.update({f"RELIA_VAR_{name}": value for name, value in self.variables.items()})
        return values

    def body(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "deployment": self.deployment_id,
            "service": self.service,
            "target": self.target,
            "version": self.version,
            "previousVersion": self.previous_version,
            "environment": self.environment,
            "upstream": self.upstreams[self.environment],
            "liveEnvironment": self.live,
            "newEnvironment": self.new_environment,
            "oldEnvironment": self.old_environment,
            "upstreams": dict(self.upstreams),
            "attempt": self.attempt,
            "variables": dict(self.variables),
            "idempotencyKey": self.idempotency_key,
        }


AdapterSpec = CommandAdapter | HttpAdapter | NginxAdapter


def has_hook(spec: AdapterSpec, action: str) -> bool:
    """Deploy and retire are optional hooks; switch and rollback always do something."""
    if action in ("switch", "rollback"):
        return True
    return getattr(spec, action, None) is not None


def perform(spec: AdapterSpec, context: ActionContext) -> str:
    """Run ``context.action`` through the adapter. Returns a short detail; raises AdapterError."""
    action = context.action
    if isinstance(spec, HttpAdapter):
        url = spec.switch if action in ("switch", "rollback") else getattr(spec, action)
        return call_webhook(url, context, headers=spec.headers, timeout=spec.timeout_seconds)
    if isinstance(spec, CommandAdapter):
        argv = spec.switch if action in ("switch", "rollback") else getattr(spec, action)
        return run_command(argv, context, timeout=spec.timeout_seconds, cwd=spec.working_directory)
    if action in ("switch", "rollback"):
        return nginx_switch(spec, context)
    return run_command(getattr(spec, action), context, timeout=spec.timeout_seconds)


# --------------------------------------------------------------------------------------------------- command


def command_environment(context: ActionContext) -> dict[str, str]:
    inherited = {name: os.environ[name] for name in INHERITED_VARIABLES if name in os.environ}
    inherited.setdefault("PATH", DEFAULT_PATH)
    return {**inherited, **context.environment_variables()}


def run_command(
    argv: list[str],
    context: ActionContext | None,
    *,
    timeout: float,
    cwd: str | None = None,
    what: str | None = None,
) -> str:
    """Run ``argv`` (no shell) in its own process group; exit 0 is success. The group is killed on timeout, so
    a script's children do not outlive it."""
    what = what or Path(argv[0]).name
    environment = command_environment(context) if context is not None else _plain_environment()
    try:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=environment,
            cwd=cwd,
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        raise AdapterError(f"{what}: no such program ({argv[0]})", permanent=True) from exc
    except PermissionError as exc:
        raise AdapterError(f"{what}: not executable ({argv[0]})", permanent=True) from exc
    except NotADirectoryError as exc:
        raise AdapterError(f"{what}: bad working directory {cwd}", permanent=True) from exc
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        output, _ = process.communicate()
        raise AdapterError(f"{what}: still running after {timeout:g} s, stopped; output: {_tail(output)}") from None
    except BaseException:
        _kill_group(process)
        process.wait()
        raise
    text = _tail(output)
    if process.returncode != 0:
        raise AdapterError(f"{what}: exit status {process.returncode}; output: {text}")
    return f"{what}: exit status 0" + (f"; output: {text}" if text else "")


def _plain_environment() -> dict[str, str]:
    inherited = {name: os.environ[name] for name in INHERITED_VARIABLES if name in os.environ}
    inherited.setdefault("PATH", DEFAULT_PATH)
    return inherited


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def _tail(output: bytes | None) -> str:
    text = (output or b"").decode("utf-8", errors="replace").strip()
    return text if len(text) <= OUTPUT_CHARS else "..." + text[-OUTPUT_CHARS:]


# ------------------------------------------------------------------------------------------------------ http


def call_webhook(url: str, context: ActionContext, *, headers: dict[str, str], timeout: float) -> str:
    sent_headers = {
        **headers,
        "User-Agent": f"relia/{__version__}",
        "Content-Type": "application/json",
        "Idempotency-Key": context.idempotency_key,
    }
    try:
        response = httpx2.post(url, json=context.body(), headers=sent_headers, timeout=timeout)
    except httpx2.HTTPError as exc:
        raise AdapterError(f"POST {url}: {type(exc).__name__}: {exc}") from exc
    status = response.status_code
    snippet = response.text[:300].strip()
    if 200 <= status < 300:
        return f"POST {url}: HTTP {status}"
    permanent = 400 <= status < 500 and status not in (408, 425, 429)
    raise AdapterError(f"POST {url}: HTTP {status}" + (f": {snippet}" if snippet else ""), permanent=permanent)


# ----------------------------------------------------------------------------------------------------- nginx


def upstream_file_text(spec: NginxAdapter, context: ActionContext) -> str:
    """The include file that sends traffic to ``context.environment``'s upstream."""
    address = context.upstreams[context.environment]
    header = (
        f"# Written by Relia: deployment {context.deployment_id} of {context.service} ({context.action}).\n"
        f"# Live environment: {context.environment} ({address}). Relia rewrites this file; edits are lost.\n"
    )
    if spec.upstream_name is None:
        return f"{header}server {address};\n"
    return f"{header}upstream {spec.upstream_name} {{\n    server {address};\n}}\n"


def nginx_switch(spec: NginxAdapter, context: ActionContext) -> str:
    """Point nginx at ``context.environment``: write the include file atomically, check the configuration (the
    previous file goes back if the check fails, so a later reload cannot pick up a broken file), reload."""
    path = Path(spec.upstream_file)
    wanted = upstream_file_text(spec, context)
    try:
        previous = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        previous = None
    except OSError as exc:
        raise AdapterError(f"cannot read {path}: {exc}") from exc
    try:
        atomic_write(path, wanted)
    except OSError as exc:
        raise AdapterError(f"cannot write {path}: {exc}") from exc
    try:
        run_command(spec.test_command, None, timeout=spec.timeout_seconds, what="nginx configuration test")
    except AdapterError as exc:
        _restore(path, previous)
        raise AdapterError(f"{exc.detail}; {path} was put back as it was", permanent=True) from exc
    reloaded = run_command(spec.reload_command, None, timeout=spec.timeout_seconds, what="nginx reload")
    return f"{path} now sends traffic to {context.environment} ({context.upstreams[context.environment]}); {reloaded}"


def _restore(path: Path, previous: str | None) -> None:
    with contextlib.suppress(OSError):
        if previous is None:
            path.unlink(missing_ok=True)
        else:
            atomic_write(path, previous)


def atomic_write(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so a reader sees the old file or the new one, never a mix, and the new one
    survives a crash: write a temporary file beside it, fsync it, rename it over, fsync the directory."""
    directory = path.parent
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = 0o644
    descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    directory_descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(directory_descriptor)
    finally:
        os.close(directory_descriptor)
