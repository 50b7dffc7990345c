"""Operator verbs: the database, the server, the worker, and `relia up` which supervises both."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from relia.core.settings import Settings

db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision")] = "head") -> None:
    """Migrate the database to the newest schema (or REVISION)."""
    from relia.core import migrate

    settings = Settings()
    migrate.upgrade(settings.effective_database_url, revision)
    typer.echo(f"Database at {revision} ({_safe_url(settings.effective_database_url)}).")


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument(help="Target revision, e.g. -1 or base")]) -> None:
    """Migrate the database back to REVISION."""
    from relia.core import migrate

    settings = Settings()
    migrate.downgrade(settings.effective_database_url, revision)
    typer.echo(f"Database at {revision}.")


@db_app.command("current")
def db_current() -> None:
    """Print the database's revision and the newest one."""
    from relia.core import migrate
    from relia.core.db import create_engine_for

    engine = create_engine_for(Settings().effective_database_url, pool=False)
    try:
        typer.echo(f"current: {migrate.current_revision(engine)}\nhead:    {migrate.head_revision()}")
    finally:
        engine.dispose()


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _settle_heap() -> None:
    """Take what starting allocated (modules, the application, the ORM's mappers: about 240,000 objects) out
    of the cyclic garbage collector's sight. A full collection walked them all, 100 to 250 ms on the
    benchmark machine, and every request in flight waited it out. Reference counting still frees what they
    let go of; only cycles among these objects, which live as long as the process anyway, go uncollected."""
    gc.collect()
    gc.freeze()


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve() -> None:
        """Run the API and web UI (no worker) on RELIA_HOST:RELIA_PORT."""
        import uvicorn

        from relia.api.app import create_app
        from relia.core.logging import configure_logging

        settings = Settings()
        configure_logging(settings.log_level, json=settings.log_json)
        application = create_app(settings)
        _settle_heap()
        uvicorn.run(
            application,
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            proxy_headers=True,
            timeout_graceful_shutdown=10,
        )

    @app.command("worker")
    def worker() -> None:
        """Run the background worker: the engine tick and the task queue."""
        from relia.core.logging import configure_logging
        from relia.worker.main import run_worker

        settings = Settings()
        configure_logging(settings.log_level, json=settings.log_json)
        _settle_heap()
        run_worker(settings)

    @app.command("up")
    def up(
        migrate_first: Annotated[bool, typer.Option("--migrate", help="Run `relia db upgrade` first")] = False,
        apply_paths: Annotated[
            list[Path] | None, typer.Option("--apply", help="Apply these config files first, as the operator")
        ] = None,
        demo_mode: Annotated[
            bool, typer.Option("--demo", help="Demo sign-in, SLO history, and live demo traffic while running")
        ] = False,
    ) -> None:
        """Run the API, web UI and worker together; Ctrl-C stops them all.

        `make run` is `relia up --migrate --apply examples/ --demo`: preparing in this one process, before
        the children start, saves a Python start-up per step."""
        settings = Settings()
        if migrate_first:
            from relia.core import migrate

            migrate.upgrade(settings.effective_database_url)
            typer.echo("Database migrated.")
        if apply_paths:
            typer.echo(apply_as_operator(settings, apply_paths))
        if demo_mode:
            typer.echo(prepare_demo(settings, "admin", "relia-demo"))
            os.environ["RELIA_DEMO_TRAFFIC"] = "1"
        Supervisor(settings).run()

    @app.command("demo")
    def demo(
        username: Annotated[str, typer.Option(help="The demo administrator")] = "admin",
        password: Annotated[str, typer.Option(help="Set only when the user has no password yet")] = "relia-demo",
    ) -> None:
        """Give the demo administrator a password if they have none, fill the demo SLOs' history, and print
        how to sign in."""
        typer.echo(prepare_demo(Settings(), username, password))


def apply_as_operator(settings: Settings, paths: list[Path]) -> str:
    """Apply config files in-process as the local operator (whoever holds the database)."""
    from relia.config import service as config_service
    from relia.config.documents import ConfigInvalid, read_paths
    from relia.core.auth import Principal, Via
    from relia.core.clock import SystemClock
    from relia.core.db import Database

    db = Database(settings.effective_database_url)
    try:
        with db.transaction() as session:
            plan = config_service.apply(
                session,
                read_paths(paths),
                actor=Principal.system("local-operator", via=Via.cli),
                now=SystemClock().now(),
            )
    except ConfigInvalid as exc:
        for problem in exc.problems:
            typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(1) from exc
    finally:
        db.dispose()
    counts = plan.counts
    return (
        f"Applied {', '.join(str(path) for path in paths)}: {counts['create']} created, "
        f"{counts['update']} updated, {counts['unchanged']} unchanged."
    )


def prepare_demo(settings: Settings, username: str, password: str) -> str:
    from sqlalchemy import select

    from relia.alerting import demo as alerting_demo
    from relia.catalog.models import User
    from relia.core.auth import hash_password
    from relia.core.clock import SystemClock
    from relia.core.db import Database
    from relia.slo import demo as slo_demo

    db = Database(settings.effective_database_url)
    try:
        with db.transaction() as session:
            user = session.scalars(select(User).where(User.username == username)).one_or_none()
            if user is None:
                typer.echo(f"error: there is no user {username!r}; apply examples/ first", err=True)
                raise typer.Exit(1)
            if user.password_hash is None:
                user.password_hash = hash_password(password)
                shown = password
            else:
                shown = "(the password you set earlier)"
        now = SystemClock().now()
        fed = slo_demo.seed(db, now)
        opened = alerting_demo.seed(db, now)
    finally:
        db.dispose()
    base = f"http://{settings.host}:{settings.port}"
    lines = [f"\n  Relia:   {base}", f"  Sign in: {username} / {shown}"]
    if fed:
        lines.append(f"  SLOs:    {fed} demo SLOs have traffic up to now")
    if opened:
        lines.append(f"  Alerts:  {opened} demo alert groups are open")
    return "\n".join([*lines, ""])


class Supervisor:
    """Starts `relia serve` and `relia worker` as child processes, restarts one that dies (with backoff), and
    stops both on Ctrl-C or SIGTERM."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.restarts: dict[str, list[float]] = {"serve": [], "worker": []}
        self.stopping = False

    def _start(self, name: str) -> None:
        self.children[name] = subprocess.Popen([sys.executable, "-m", "relia", name], env=os.environ.copy())

    def _stop_all(self, *_: object) -> None:
        self.stopping = True

    def run(self) -> None:
        signal.signal(signal.SIGINT, self._stop_all)
        signal.signal(signal.SIGTERM, self._stop_all)
        for name in ("serve", "worker"):
            self._start(name)
        typer.echo(f"Relia is starting on http://{self.settings.host}:{self.settings.port} (Ctrl-C stops it)")
        try:
            while not self.stopping:
                time.sleep(0.2)
                for name, child in list(self.children.items()):
                    if child.poll() is None or self.stopping:
                        continue
                    recent = [t for t in self.restarts[name] if time.monotonic() - t < 60]
                    if len(recent) >= 5:
                        typer.echo(f"relia {name} keeps exiting (code {child.returncode}); stopping.", err=True)
                        self.stopping = True
                        break
                    typer.echo(f"relia {name} exited with {child.returncode}; restarting.", err=True)
                    self.restarts[name] = [*recent, time.monotonic()]
                    time.sleep(min(5, 2 ** len(recent) * 0.25))
                    self._start(name)
        finally:
            for child in self.children.values():
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 15
            for child in self.children.values():
                try:
                    child.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    child.kill()
            typer.echo("Relia stopped.")
