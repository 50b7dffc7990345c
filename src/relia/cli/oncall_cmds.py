"""`relia oncall ...`: who is on call, the final rotation over a range, and each person's load, from a terminal.

Times are printed on each schedule's own clock (with its zone's abbreviation); ``-o json`` / ``-o yaml`` give
the API's answers unchanged (UTC)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from relia.cli.client import ApiError, Client
from relia.cli.output import Format, console, emit, error_console, print_problem

oncall_app = typer.Typer(help="On-call schedules: who is on call, shifts, fairness.", no_args_is_help=True)
OutputOpt = Annotated[Format, typer.Option("--output", "-o", help="table, json or yaml")]
TimeOpt = "ISO 8601, e.g. 2026-03-02T09:00Z or 2026-03-02T09:00+01:00 (no offset: UTC)"
SOURCE_STYLE = {"override": "[yellow]◆ override[/]", "swap": "[yellow]◆ swap[/]", "temporary": "[yellow]◆ temporary[/]"}


def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except ApiError as exc:
        print_problem(exc.problem, exc.status or None)
        raise typer.Exit(1) from exc


def _instant(value: str | None, option: str) -> str | None:
    """The API's form of a time given on the command line; a time without an offset is UTC."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        error_console.print(f"error: {option} {value!r} is not a time; write it as {TimeOpt}")
        raise typer.Exit(2) from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).isoformat()


def _local(value: str | None, zone: str) -> str:
    if value is None:
        return "-"
    instant = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(ZoneInfo(zone))
    return f"{instant:%a %Y-%m-%d %H:%M} {instant.tzname()}"


def _through(item: dict[str, Any]) -> str:
    return f"layer {item['layer']}" if item["source"] == "layer" else SOURCE_STYLE.get(item["source"], item["source"])


def _zones(client: Client) -> dict[str, str]:
    return {item["name"]: item["spec"]["timeZone"] for item in _call(client.paginate, "/schedules")}


@oncall_app.command("schedules")
def schedules_list(
    team: Annotated[str | None, typer.Option(help="Only this team's schedules")] = None,
    output: OutputOpt = Format.table,
) -> None:
    """List schedules with who is on call now."""
    items = _call(Client().paginate, "/schedules", team=team)
    if output != Format.table:
        emit(items, output)
        return
    table = Table(title="On-call schedules")
    for header in ("Schedule", "Team", "Time zone", "On call now"):
        table.add_column(header)
    for item in items:
        names = ", ".join(entry["user"] for entry in item["onCall"]) or "[red]✖ nobody[/]"
        table.add_row(item["name"], item["team"], item["spec"]["timeZone"], names)
    console.print(table)


@oncall_app.command("who")
def who(
    schedule: Annotated[
        list[str] | None, typer.Option("--schedule", "-s", help="Repeat for several; default all")
    ] = None,
    at: Annotated[str | None, typer.Option(help=f"When; default now. {TimeOpt}")] = None,
    output: OutputOpt = Format.table,
) -> None:
    """Who is on call now (or --at a time), with the stretch each is in."""
    client = Client()
    found = _call(client.get, "/oncall/who", schedule=schedule, at=_instant(at, "--at"))
    if output != Format.table:
        emit(found, output)
        return
    zones = _zones(client)
    table = Table(title=f"On call at {at}" if at else "On call now")
    for header in ("Schedule", "Who", "Through", "Since", "Until"):
        table.add_column(header)
    for entry in found:
        zone = zones.get(entry["schedule"], "UTC")
        if not entry["onCall"]:
            table.add_row(entry["schedule"], "[red]✖ nobody[/]", "-", "-", "-")
        for item in entry["onCall"]:
            table.add_row(
                entry["schedule"],
                f"{item['name']} ({item['user']})",
                _through(item),
                _local(item["shiftStart"], zone),
                _local(item["shiftEnd"], zone),
            )
    console.print(table)


@oncall_app.command("shifts")
def shifts(
    schedule: Annotated[str, typer.Option("--schedule", "-s", help="The schedule")],
    start: Annotated[str | None, typer.Option(help=f"Default now. {TimeOpt}")] = None,
    end: Annotated[str | None, typer.Option(help=f"Default four weeks after start. {TimeOpt}")] = None,
    user: Annotated[str | None, typer.Option(help="Only this person's shifts")] = None,
    output: OutputOpt = Format.table,
) -> None:
    """The final rotation of a schedule over a range: who is on call when, and why."""
    client = Client()
    found = _call(
        client.get, f"/schedules/{schedule}/shifts", start=_instant(start, "--start"), end=_instant(end, "--end")
    )
    if user:
        found = [item for item in found if item["user"] == user]
    if output != Format.table:
        emit(found, output)
        return
    zone = _call(client.get, f"/schedules/{schedule}")["spec"]["timeZone"]
    table = Table(title=f"{schedule} ({zone})")
    for header in ("Who", "From", "Until", "Through"):
        table.add_column(header)
    for item in found:
        table.add_row(
            f"{item['name']} ({item['user']})", _local(item["start"], zone), _local(item["end"], zone), _through(item)
        )
    console.print(table)
    if not found:
        console.print("Nobody is on call in this range.")


def _hours(value: float) -> str:
    return f"{value:.1f}"


@oncall_app.command("fairness")
def fairness(
    schedule: Annotated[str, typer.Option("--schedule", "-s", help="The schedule")],
    start: Annotated[str | None, typer.Option(help=f"Default four weeks ago (--next: now). {TimeOpt}")] = None,
    end: Annotated[str | None, typer.Option(help=f"Default four weeks after start. {TimeOpt}")] = None,
    upcoming: Annotated[bool, typer.Option("--next", help="The next four weeks instead of the last four")] = False,
    output: OutputOpt = Format.table,
) -> None:
    """Each person's load: hours on call, off-hours and weekend hours (on their own clock), pages and night
    pages, and the spread between the most and least loaded."""
    if upcoming and start is None:
        start = datetime.now(UTC).isoformat()
    report = _call(
        Client().get, f"/schedules/{schedule}/fairness", start=_instant(start, "--start"), end=_instant(end, "--end")
    )
    if output != Format.table:
        emit(report, output)
        return
    table = Table(title=f"{schedule}: {report['start'][:16]} to {report['end'][:16]} UTC")
    for header in ("Person", "Clock", "Hours", "Off-hours", "Weekend h", "Pages", "Night pages"):
        table.add_column(header, justify="right" if header not in ("Person", "Clock") else "left")
    most, least = report["mostLoaded"], report["leastLoaded"]
    for row in report["people"]:
        marker = " [yellow]▲ most[/]" if row["user"] == most else " [dim]▽ least[/]" if row["user"] == least else ""
        table.add_row(
            f"{row['name']} ({row['user']}){marker}",
            row["timeZone"],
            _hours(row["hours"]),
            _hours(row["offHours"]),
            _hours(row["weekendHours"]),
            str(row["pages"]),
            str(row["nightPages"]),
        )
    spread = report["spread"]
    table.add_section()
    table.add_row(
        "Spread (most - least)",
        "",
        _hours(spread["hours"]),
        _hours(spread["offHours"]),
        _hours(spread["weekendHours"]),
        str(spread["pages"]),
        str(spread["nightPages"]),
    )
    console.print(table)
    for note in report["notes"]:
        console.print(f"ⓘ {note}", highlight=False)
