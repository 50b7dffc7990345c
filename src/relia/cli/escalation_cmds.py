"""`relia escalation ...`: escalation policies, which policy pages for a service, an alert group's escalation and
delivery log, personal notification rules, test messages and the paging pipeline's health. A client of the API
like every object verb."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from relia.cli.client import ApiError, Client
from relia.cli.output import Format, console, emit, print_problem

escalation_app = typer.Typer(
    help="Escalation policies, alert group escalations, notification rules and delivery.", no_args_is_help=True
)
OutputOpt = Annotated[Format, typer.Option("--output", "-o", help="table, json or yaml")]


def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except ApiError as exc:
        print_problem(exc.problem, exc.status or None)
        raise typer.Exit(1) from exc


@escalation_app.command("policies")
def policies(
    team: Annotated[str | None, typer.Option(help="Only this team's policies")] = None,
    output: OutputOpt = Format.table,
) -> None:
    """List escalation policies with what each does when nobody acknowledges."""
    items = _call(Client().get, "/escalation-policies", team=team)
    for item in items:
        item["team"] = item["spec"]["team"]
        item["default"] = "yes" if item["spec"].get("default") else ""
        item["steps"] = "; ".join(f"{row['after']}: {row['targets']}" for row in item["preview"] if row["repeat"] == 0)
        item["repeat"] = item["spec"].get("repeat", 0)
    emit(
        items,
        output,
        columns=[
            ("Policy", "name"),
            ("Team", "team"),
            ("Default", "default"),
            ("Steps", "steps"),
            ("Repeats", "repeat"),
            ("Escalating", "liveGroups"),
        ],
    )


@escalation_app.command("show")
def show(name: str, output: OutputOpt = Format.yaml) -> None:
    """Show one escalation policy."""
    emit(_call(Client().get, f"/escalation-policies/{name}"), output)


@escalation_app.command("service")
def for_service(slug: str, output: OutputOpt = Format.table) -> None:
    """Which escalation policy pages for a service now, and why (its own, the team default, a pager handoff)."""
    found = _call(Client().get, f"/services/{slug}/escalation-policy")
    if output != Format.table:
        emit(found, output)
        return
    policy = found["policy"] or "no policy"
    console.print(f"{found['service']}: {policy} ({found['source']}): {found['detail']}", highlight=False)


@escalation_app.command("list")
def list_escalations(
    status: Annotated[str | None, typer.Option(help="active, acknowledged, snoozed, resolved, exhausted, none")] = None,
    policy: Annotated[str | None, typer.Option(help="Only groups escalating under this policy")] = None,
    output: OutputOpt = Format.table,
) -> None:
    """Alert groups' escalations, newest first."""
    items = _call(Client().get, "/escalations", status=status, policy=policy)
    emit(
        items,
        output,
        columns=[
            ("Group", "groupId"),
            ("Title", "title"),
            ("Service", "service"),
            ("Policy", "policy"),
            ("Status", "status"),
            ("Next step (UTC)", "nextStepAt"),
        ],
    )


@escalation_app.command("group")
def group(group_id: int, output: OutputOpt = Format.table) -> None:
    """One alert group's escalation: the steps that ran and every notification with its delivery."""
    found = _call(Client().get, f"/escalations/{group_id}")
    if output != Format.table:
        emit(found, output)
        return
    console.print(
        f"Alert group #{found['groupId']} {found['title']}: {found['status']}, policy {found['policy'] or '-'} "
        f"({found['source']}: {found['sourceDetail']})",
        highlight=False,
    )
    for item in found["notifications"]:
        last = item["attempts"][-1]["detail"] if item["attempts"] else ""
        item["lastAttempt"] = last
        item["via"] = f"{item['kind'] or '-'} {item['contactMethod'] or ''}".strip()
    emit(
        found["notifications"],
        Format.table,
        columns=[
            ("Paged (UTC)", "pagedAt"),
            ("User", "user"),
            ("Via", "via"),
            ("Step", "step"),
            ("Status", "status"),
            ("Last attempt", "lastAttempt"),
        ],
    )


@escalation_app.command("rules")
def rules(
    user: Annotated[str, typer.Argument(help="Whose rules (default: you)")] = "me",
    output: OutputOpt = Format.table,
) -> None:
    """A user's notification rules and what a page does with them now."""
    found = _call(Client().get, f"/users/{user}/notification-rules")
    if output != Format.table:
        emit(found, output)
        return
    emit(
        found["effective"],
        Format.table,
        columns=[("Contact method", "contactMethod"), ("Kind", "kind"), ("After", "after")],
        title=f"Notification rules of {found['user']}",
    )
    for note in found["notes"]:
        console.print(f"note: {note}", highlight=False)


@escalation_app.command("test")
def test(
    contact_method: Annotated[str, typer.Argument(help="The contact method's name")],
    user: Annotated[str, typer.Option(help="Whose contact method (default: you)")] = "me",
) -> None:
    """Send a test message to one of your contact methods (administrators: anyone's)."""
    queued = _call(Client().request, "POST", f"/users/{user}/contact-methods/{contact_method}/test")
    typer.echo(f"Test message queued ({queued['idempotencyKey']}); the worker sends it at its next tick.")


@escalation_app.command("health")
def health(output: OutputOpt = Format.table) -> None:
    """Whether the paging pipeline keeps up: overdue timers and notifications, failures in the last hour."""
    found = _call(Client().get, "/paging/health")
    if output != Format.table:
        emit(found, output)
        return
    console.print(
        f"paging pipeline: {found['status']} (overdue: {found['overdueTimers']} timers, "
        f"{found['overdueMessages']} notifications; last hour: {found['failedLastHour']} failed, "
        f"{found['unreachableLastHour']} unreachable)",
        highlight=False,
    )
    if found["status"] != "ok":
        raise typer.Exit(1)
