"""`relia`: run the service, manage the database, and work with every object from a terminal or a pipeline."""

from __future__ import annotations

import getpass
import sys
from typing import Annotated, Any, NoReturn

import typer

from relia.cli import config_cmds, policy_cmds, run_cmds
from relia.cli.alerts_cmds import alerts_app
from relia.cli.client import ApiError, Client, close_local_apps
from relia.cli.deploy_cmds import deploy_app
from relia.cli.escalation_cmds import escalation_app
from relia.cli.oncall_cmds import oncall_app
from relia.cli.output import Format, emit, error_console, print_problem
from relia.cli.slo_cmds import slo_app

app = typer.Typer(
    name="relia",
    help="Relia: SLOs, error budgets, release gates, on-call and paging.\n\n"
    "Without RELIA_URL, commands work on the local database as its operator; with RELIA_URL and "
    "RELIA_TOKEN they go to that server with that token's rights.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _each_command(ctx: typer.Context) -> None:
    ctx.call_on_close(close_local_apps)


app.add_typer(run_cmds.db_app, name="db")
run_cmds.register(app)
config_cmds.register(app)

services_app = typer.Typer(help="Services in the catalog.", no_args_is_help=True)
teams_app = typer.Typer(help="Teams and their members.", no_args_is_help=True)
users_app = typer.Typer(help="Users.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens.", no_args_is_help=True)
app.add_typer(services_app, name="services")
app.add_typer(teams_app, name="teams")
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")
app.add_typer(slo_app, name="slo")
app.add_typer(deploy_app, name="deploy")
app.add_typer(alerts_app, name="alerts")
app.add_typer(escalation_app, name="escalation")
app.add_typer(oncall_app, name="oncall")
policy_cmds.register(app)  # gate, policy, report

OutputOpt = Annotated[Format, typer.Option("--output", "-o", help="table, json or yaml")]


def fail(exc: ApiError) -> NoReturn:
    print_problem(exc.problem, exc.status or None)
    raise typer.Exit(1)


def call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except ApiError as exc:
        fail(exc)


# ---------------------------------------------------------------------------------------------- services


@services_app.command("list")
def services_list(
    owner: Annotated[str | None, typer.Option(help="Only this team's services")] = None,
    tier: Annotated[int | None, typer.Option(min=1, max=4)] = None,
    output: OutputOpt = Format.table,
) -> None:
    """List services with their owner and tier."""
    items = call(Client().paginate, "/services", owner=owner, tier=tier)
    emit(
        items,
        output,
        columns=[
            ("Service", "slug"),
            ("Name", "name"),
            ("Owner", "owner"),
            ("Tier", "tier"),
            ("Depends on", "dependsOn"),
        ],
    )


@services_app.command("show")
def services_show(slug: str, output: OutputOpt = Format.yaml) -> None:
    """Show one service."""
    emit(call(Client().get, f"/services/{slug}"), output)


# ------------------------------------------------------------------------------------------------- teams


@teams_app.command("list")
def teams_list(output: OutputOpt = Format.table) -> None:
    """List teams."""
    items = call(Client().paginate, "/teams")
    for item in items:
        item["memberCount"] = len(item["members"])
    emit(
        items,
        output,
        columns=[("Team", "slug"), ("Name", "name"), ("Members", "memberCount"), ("Services", "services")],
    )


@teams_app.command("show")
def teams_show(slug: str, output: OutputOpt = Format.yaml) -> None:
    """Show one team with its members and services."""
    emit(call(Client().get, f"/teams/{slug}"), output)


# ------------------------------------------------------------------------------------------------- users


@users_app.command("list")
def users_list(output: OutputOpt = Format.table) -> None:
    """List users."""
    items = call(Client().paginate, "/users")
    emit(
        items,
        output,
        columns=[
            ("User", "username"),
            ("Name", "name"),
            ("Email", "email"),
            ("Time zone", "timeZone"),
            ("Admin", "admin"),
        ],
    )


@users_app.command("show")
def users_show(username: str, output: OutputOpt = Format.yaml) -> None:
    """Show one user."""
    emit(call(Client().get, f"/users/{username}"), output)


@users_app.command("set-password")
def users_set_password(
    username: str,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin")] = False,
) -> None:
    """Set a user's password for the web UI (yourself, or anyone as an administrator)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("New password: ")
        if getpass.getpass("Again: ") != password:
            error_console.print("error: the passwords differ")
            raise typer.Exit(1)
    call(Client().request, "PUT", f"/users/{username}/password", json={"password": password})
    typer.echo(f"Password set for {username}.")


# ------------------------------------------------------------------------------------------------ tokens


@tokens_app.command("create")
def tokens_create(
    name: Annotated[str, typer.Option(help="What the token is for, e.g. ci-pipeline")],
    scope: Annotated[str, typer.Option(help="read, write or admin")] = "read",
    user: Annotated[str | None, typer.Option(help="Whose token (administrators; required locally)")] = None,
    expires_in_days: Annotated[int | None, typer.Option(help="Expire after this many days")] = None,
    output: OutputOpt = Format.table,
) -> None:
    """Create an API token. The secret is printed once; only a hash is stored."""
    body = {"name": name, "scope": scope, "user": user, "expiresInDays": expires_in_days}
    created = call(Client().request, "POST", "/tokens", json={k: v for k, v in body.items() if v is not None})
    if output == Format.table:
        typer.echo(f"Token {created['id']} for {created['user']} ({created['scope']}). It is shown only once:")
        typer.echo(created["token"])
    else:
        emit(created, output)


@tokens_app.command("list")
def tokens_list(
    user: Annotated[str | None, typer.Option(help="Whose tokens (administrators)")] = None,
    output: OutputOpt = Format.table,
) -> None:
    """List API tokens (never their secrets)."""
    items = call(Client().get, "/tokens", user=user)
    emit(
        items,
        output,
        columns=[
            ("Id", "id"),
            ("Name", "name"),
            ("User", "user"),
            ("Scope", "scope"),
            ("Last used", "lastUsedAt"),
            ("Revoked", "revokedAt"),
        ],
    )


@tokens_app.command("revoke")
def tokens_revoke(token_id: str) -> None:
    """Revoke an API token at once."""
    call(Client().request, "DELETE", f"/tokens/{token_id}")
    typer.echo(f"Token {token_id} revoked.")


@app.command("audit")
def audit(
    kind: Annotated[str | None, typer.Option(help="Object kind, e.g. Service")] = None,
    key: Annotated[str | None, typer.Option(help="Object name")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    output: OutputOpt = Format.table,
) -> None:
    """The newest audit entries (administrators)."""
    page = call(Client().get, "/audit", kind=kind, key=key, limit=limit)
    emit(
        page["items"],
        output,
        columns=[
            ("When", "at"),
            ("Who", "actor"),
            ("Via", "via"),
            ("Action", "action"),
            ("Kind", "objectKind"),
            ("Name", "objectKey"),
        ],
    )


def main() -> None:
    app()


if __name__ == "__main__":
    main()
