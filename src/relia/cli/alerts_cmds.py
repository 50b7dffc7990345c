"""`relia alerts ...`: alert groups from a terminal (list, show, ack, snooze, resolve), integrations and their
keys, and silences. A client of the API like every other object verb."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from relia.cli.client import ApiError, Client
from relia.cli.output import Format, console, emit, print_problem

alerts_app = typer.Typer(
    help="Alert groups: list, acknowledge, snooze, resolve; integrations; silences.", no_args_is_help=True
)
integrations_app = typer.Typer(help="Where alerts come in, and their keys.", no_args_is_help=True)
silences_app = typer.Typer(help="Silences and maintenance windows.", no_args_is_help=True)
alerts_app.add_typer(integrations_app, name="integrations")
alerts_app.add_typer(silences_app, name="silences")

OutputOpt = Annotated[Format, typer.Option("--output", "-o", help="table, json or yaml")]
STATE_STYLE = {
    "triggered": "[red]▲ triggered[/]",
    "acknowledged": "[yellow]● acknowledged[/]",
    "snoozed": "[dim]◌ snoozed[/]",
    "resolved": "[green]✔ resolved[/]",
}


def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except ApiError as exc:
        print_problem(exc.problem, exc.status or None)
        raise typer.Exit(1) from exc


def _when(value: str | None) -> str:
    return value[:16].replace("T", " ") if value else "-"


# ---------------------------------------------------------------------------------------------- groups


@alerts_app.command("list")
def alerts_list(
    state: Annotated[
        str, typer.Option(help="open (default: not resolved), triggered, acknowledged, snoozed, resolved or all")
    ] = "open",
    service: Annotated[str | None, typer.Option(help="Only this service's groups")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="At most this many, newest first")] = 50,
    output: OutputOpt = Format.table,
) -> None:
    """Alert groups, newest first."""
    page = _call(Client().get, "/alert-groups", state=state, service=service, limit=limit)
    items = page["items"]
    if output != Format.table:
        emit(items, output)
        return
    from rich.table import Table

    table = Table(title=f"Alert groups ({state})")
    for header in ("Group", "State", "Severity", "Service", "Title", "Firing", "Opened (UTC)"):
        table.add_column(header)
    for group in items:
        table.add_row(
            f"#{group['id']}",
            STATE_STYLE.get(group["state"], group["state"]),
            group["severity"],
            group["service"],
            group["title"],
            f"{group['firingCount']}/{group['alertCount']}",
            _when(group["openedAt"]),
        )
    console.print(table)
    if not items:
        console.print("No alert groups.")


@alerts_app.command("show")
def alerts_show(
    group: Annotated[int, typer.Argument(help="The group's number")], output: OutputOpt = Format.yaml
) -> None:
    """One alert group with its alerts."""
    emit(_call(Client().get, f"/alert-groups/{group}"), output)


def _act(group: int, action: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    return _call(Client().request, "POST", f"/alert-groups/{group}/{action}", json=body)  # type: ignore[no-any-return]


@alerts_app.command("ack")
def alerts_ack(group: Annotated[int, typer.Argument(help="The group's number")]) -> None:
    """Acknowledge an alert group: its escalation stops."""
    result = _act(group, "acknowledge")
    typer.echo(f"Alert group #{group} acknowledged by {result['acknowledgedBy']}.")


@alerts_app.command("resolve")
def alerts_resolve(group: Annotated[int, typer.Argument(help="The group's number")]) -> None:
    """Resolve an alert group and every alert of it still firing."""
    result = _act(group, "resolve")
    typer.echo(f"Alert group #{group} resolved by {result['resolvedBy']}.")


@alerts_app.command("snooze")
def alerts_snooze(
    group: Annotated[int, typer.Argument(help="The group's number")],
    duration: Annotated[str, typer.Option("--for", help="How long: 30m, 4h, 1d (at most 7d)")] = "1h",
) -> None:
    """Snooze an alert group: escalation pauses, and the group is triggered again when the snooze ends."""
    result = _act(group, "snooze", {"duration": duration})
    typer.echo(f"Alert group #{group} snoozed until {_when(result['snoozedUntil'])} UTC.")


# ---------------------------------------------------------------------------------------- integrations


def _print_key(created: dict[str, Any]) -> None:
    typer.echo(f"Integration {created['name']} ({created['service']}). Its key is shown only once:")
    typer.echo(created["secret"])
    for source, url in created["urls"].items():
        typer.echo(f"  {source:<13} {url}")


@integrations_app.command("list")
def integrations_list(output: OutputOpt = Format.table) -> None:
    """Integrations with their default service (never their keys)."""
    items = _call(Client().get, "/integrations")
    for item in items:
        item["keyHint"] = f"…{item['key']['hint']}" if item["key"]["hint"] else "no key yet"
    emit(
        items,
        output,
        columns=[
            ("Integration", "name"),
            ("Service", "service"),
            ("Enabled", "enabled"),
            ("Key", "keyHint"),
            ("Group by", "groupBy"),
            ("Window", "groupWindow"),
            ("Auto-resolve", "autoResolveAfter"),
        ],
    )


@integrations_app.command("create")
def integrations_create(
    name: Annotated[str, typer.Argument(help="The integration's name, e.g. prometheus-prod")],
    service: Annotated[str, typer.Option(help="The default service of its alerts")],
    group_by: Annotated[list[str] | None, typer.Option("--group-by", help="Group by this label (repeatable)")] = None,
    window: Annotated[str, typer.Option(help="Grouping window")] = "1h",
    auto_resolve_after: Annotated[str | None, typer.Option(help="Resolve groups quiet for this long")] = None,
    description: Annotated[str, typer.Option(help="What it is for")] = "",
) -> None:
    """Create an integration and print its key (once; only a hash is stored)."""
    body: dict[str, Any] = {"name": name, "service": service, "groupWindow": window, "description": description}
    if group_by:
        body["groupBy"] = group_by
    if auto_resolve_after:
        body["autoResolveAfter"] = auto_resolve_after
    _print_key(_call(Client().request, "POST", "/integrations", json=body))


@integrations_app.command("rotate-key")
def integrations_rotate_key(
    name: Annotated[str, typer.Argument(help="The integration")],
    grace: Annotated[str | None, typer.Option(help="Keep the old key working this long (e.g. 1h, at most 7d)")] = None,
) -> None:
    """Make a new key for an integration and print it (once). Configured integrations get their first key so."""
    _print_key(_call(Client().request, "POST", f"/integrations/{name}/rotate-key", json={"grace": grace}))


# -------------------------------------------------------------------------------------------- silences


@silences_app.command("list")
def silences_list(
    state: Annotated[str | None, typer.Option(help="active, pending or expired")] = None,
    output: OutputOpt = Format.table,
) -> None:
    """Silences, newest start first, with how many alerts each suppressed."""
    items = _call(Client().get, "/silences", state=state)
    emit(
        items,
        output,
        columns=[
            ("Silence", "name"),
            ("State", "state"),
            ("Service", "service"),
            ("Matchers", "matchers"),
            ("Ends (UTC)", "endsAt"),
            ("Suppressed", "suppressed"),
            ("Comment", "comment"),
        ],
    )


@silences_app.command("create")
def silences_create(
    comment: Annotated[str, typer.Option(help="Why (required)")],
    duration: Annotated[str, typer.Option("--for", help="How long, e.g. 2h")] = "1h",
    service: Annotated[str | None, typer.Option(help="Only this service's alerts")] = None,
    matcher: Annotated[
        list[str] | None,
        typer.Option("--matcher", "-m", help='A label matcher, e.g. alertname="DiskFull" (repeatable)'),
    ] = None,
    name: Annotated[str | None, typer.Option(help="A name (default: generated)")] = None,
) -> None:
    """Silence matching alerts from now on (with a service and no matchers: a maintenance window)."""
    body: dict[str, Any] = {"comment": comment, "duration": duration, "matchers": matcher or []}
    if service:
        body["service"] = service
    if name:
        body["name"] = name
    created = _call(Client().request, "POST", "/silences", json=body)
    typer.echo(f"Silence {created['name']} is {created['state']} until {_when(created['endsAt'])} UTC.")


@silences_app.command("expire")
def silences_expire(name: Annotated[str, typer.Argument(help="The silence")]) -> None:
    """End a silence now; the alerts it kept quiet that still fire join alert groups."""
    _call(Client().request, "POST", f"/silences/{name}/expire")
    typer.echo(f"Silence {name} ended.")
