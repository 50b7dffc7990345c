"""`relia gate`, `relia policy` and `relia report`: the release gate for CI pipelines, budget policies and what
they have in force, overrides, action items, and the velocity report.

`relia gate check` is what pipelines call: it exits 0 when the change may go (allow or warn), 1 when it is
blocked, and 2 when it could not get an answer (bad input, unknown service, unreachable server), so a pipeline
never mistakes an error for a decision."""

from __future__ import annotations

import os
from typing import Annotated, Any, NoReturn

import typer

from relia.cli.client import ApiError, Client
from relia.cli.output import Format, console, emit, error_console, print_problem

gate_app = typer.Typer(help="The release gate: may this version ship?", no_args_is_help=True)
policy_app = typer.Typer(help="Error-budget policies, what they have in force, overrides.", no_args_is_help=True)
override_app = typer.Typer(help="Time-boxed overrides of freezes, approved by a second person.", no_args_is_help=True)
report_app = typer.Typer(help="Reports.", no_args_is_help=True)
policy_app.add_typer(override_app, name="override")

OutputOpt = Annotated[Format, typer.Option("--output", "-o", help="table, json or yaml")]

GATE_ERROR = 2
DECISION_STYLE = {
    "allow": "[bold green]✔ ALLOW[/]",
    "warn": "[bold yellow]▲ WARN[/]",
    "block": "[bold red]✖ BLOCK[/]",
}
VERDICT_STYLE = {
    "faster": "[bold green]▲ room to ship faster[/]",
    "on-track": "[bold]● on track[/]",
    "slow-down": "[bold red]▼ slow down[/]",
    "unknown": "[dim]○ not enough data[/]",
}


def _call(fn: Any, *args: Any, exit_code: int = 1, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except ApiError as exc:
        _fail(exc, exit_code)


def _fail(exc: ApiError, exit_code: int) -> NoReturn:
    print_problem(exc.problem, exc.status or None)
    raise typer.Exit(exit_code)


def _percent(value: float | None) -> str:
    if value is None:
        return "no data"
    text = f"{value * 100:.1f}".rstrip("0").rstrip(".")
    return f"{text} %"


# ---------------------------------------------------------------------------------------------------- gate


@gate_app.command("check")
def gate_check(
    service: Annotated[str, typer.Option(help="The service being released")],
    change_type: Annotated[
        str, typer.Option("--change-type", help="feature, fix, config, dependency, security, p0-fix, rollback, ...")
    ],
    version: Annotated[
        str | None,
        typer.Option(help="The version being released (tag, commit, build); default: $CI_COMMIT_SHA or $GITHUB_SHA"),
    ] = None,
    phase: Annotated[str, typer.Option(help="pre_deploy or pre_switch")] = "pre_deploy",
    output: OutputOpt = Format.table,
) -> None:
    """Ask the release gate. Exits 0 on allow or warn, 1 on block, 2 when there is no answer (bad input, unknown
    service, unreachable server). Works against RELIA_URL with RELIA_TOKEN, as CI pipelines call it."""
    version = version or os.environ.get("CI_COMMIT_SHA") or os.environ.get("GITHUB_SHA") or "unversioned"
    body = {"service": service, "version": version, "changeType": change_type, "phase": phase}
    try:
        answer = Client().request("POST", "/gates/check", json=body)
    except ApiError as exc:
        _fail(exc, GATE_ERROR)
    except Exception as exc:  # a pipeline must see "no answer" (2), never a traceback's exit code 1 (block)
        error_console.print(f"error: could not ask the gate: {type(exc).__name__}: {exc}", highlight=False)
        raise typer.Exit(GATE_ERROR) from exc
    if output != Format.table:
        emit(answer, output)
    else:
        decision = answer["decision"]
        console.print(
            f"{DECISION_STYLE.get(decision, decision)} {answer['service']} {answer['version']} "
            f"({answer['changeType']}, {answer['phase']}) · check #{answer.get('checkId')}",
            highlight=False,
        )
        for reason in answer["reasons"]:
            console.print(f"  - [bold]{reason['code']}[/]: {reason['message']}", highlight=False, soft_wrap=True)
    raise typer.Exit(1 if answer["decision"] == "block" else 0)


@gate_app.command("history")
def gate_history(
    service: Annotated[str | None, typer.Option(help="Only this service")] = None,
    decision: Annotated[str | None, typer.Option(help="allow, warn or block")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    output: OutputOpt = Format.table,
) -> None:
    """Recorded gate checks, newest first: who asked about what, and the answer."""
    page = _call(Client().get, "/gates/checks", service=service, decision=decision, limit=limit)
    emit(
        page["items"],
        output,
        columns=[
            ("#", "id"),
            ("When", "at"),
            ("Service", "service"),
            ("Version", "version"),
            ("Change", "changeType"),
            ("Phase", "phase"),
            ("Decision", "decision"),
            ("Asked by", "requestedBy"),
        ],
    )


# -------------------------------------------------------------------------------------------------- policy


@policy_app.command("list")
def policy_list(output: OutputOpt = Format.table) -> None:
    """Budget policies (the built-in default too), and the services each is in force for."""
    items = _call(Client().get, "/budget-policies")
    rows = []
    for item in items:
        scope = item["spec"]["scope"]
        where = (
            "organisation"
            if scope.get("organisation")
            else f"service {scope['service']}"
            if scope.get("service")
            else f"team {scope['team']}"
        )
        engaged = [f"{state['service']} ({state['phase']})" for state in item["states"]]
        rows.append(
            {
                "name": item["name"] + (" (built in)" if item["builtIn"] else ""),
                "scope": where,
                "enabled": "yes" if item["enabled"] else "no",
                "summary": item["summary"],
                "inForce": ", ".join(engaged) or "-",
            }
        )
    if output != Format.table:
        emit(items, output)
        return
    emit(
        rows,
        output,
        columns=[
            ("Policy", "name"),
            ("Scope", "scope"),
            ("Enabled", "enabled"),
            ("What it does", "summary"),
            ("In force for", "inForce"),
        ],
    )


@policy_app.command("status")
def policy_status(
    service: Annotated[
        str | None, typer.Option(help="One service (default: every service with something in force)")
    ] = None,
    output: OutputOpt = Format.table,
) -> None:
    """What the policies have in force: freezes, required approvals, warnings, pager handoffs, pending overrides."""
    items = _call(Client().get, "/policy-status", service=service)
    if output != Format.table:
        emit(items, output)
        return
    if not items:
        console.print("Nothing is in force: no service is frozen, and every pager is where it belongs.")
        return
    for item in items:
        heading = "[bold red]✖ frozen[/]" if item["frozen"] else "[bold green]● releasing[/]"
        console.print(f"[bold]{item['service']}[/] · {heading}", highlight=False)
        for restriction in item["restrictions"]:
            exempt = ", ".join(restriction["exemptions"]) or "nothing"
            console.print(
                f"  - {restriction['kind']} since {restriction['startedAt'][:16]} UTC: {restriction['summary']} "
                f"(exempt: {exempt})",
                highlight=False,
                soft_wrap=True,
            )
        for state in item["states"]:
            extra = f", until {state['coolingUntil'][:16]} UTC" if state.get("coolingUntil") else ""
            console.print(f"  - policy {state['policy']}: {state['phase']}{extra}", highlight=False)
        handoff = item.get("pagerHandoff")
        if handoff:
            console.print(
                f"  - pager handed from {handoff['fromTeam']} to {handoff['toTeam']} since "
                f"{handoff['startedAt'][:16]} UTC",
                highlight=False,
            )
        for override in item["pendingOverrides"]:
            console.print(
                f"  - override #{override['id']} for {override['version']} awaits approval "
                f"(asked by {override['requestedBy']})",
                highlight=False,
            )
        for action in item["openActionItems"]:
            console.print(f"  - open action item #{action['id']}: {action['title']}", highlight=False)


@policy_app.command("items")
def policy_items(
    service: Annotated[str | None, typer.Option(help="Only this service")] = None,
    status: Annotated[str | None, typer.Option(help="open or done")] = "open",
    output: OutputOpt = Format.table,
) -> None:
    """Action items the policies opened."""
    items = _call(Client().get, "/action-items", service=service, status=status)
    emit(
        items,
        output,
        columns=[("#", "id"), ("Service", "service"), ("Policy", "policy"), ("Title", "title"), ("Status", "status")],
    )


@policy_app.command("close-item")
def policy_close_item(item_id: int) -> None:
    """Mark an action item done."""
    item = _call(Client().request, "POST", f"/action-items/{item_id}/close")
    typer.echo(f"Action item #{item['id']} closed: {item['title']}")


# ----------------------------------------------------------------------------------------------- overrides


def _override_line(item: dict[str, Any]) -> str:
    return (
        f"Override #{item['id']} for {item['service']} {item['version']}: {item['status']}, "
        f"usable until {item['expiresAt'][:16]} UTC"
    )


@override_app.command("request")
def override_request(
    service: Annotated[str, typer.Option(help="The frozen service")],
    version: Annotated[str, typer.Option(help="The one version to let through")],
    reason: Annotated[str, typer.Option(help="Why it cannot wait")],
    duration: Annotated[str, typer.Option(help="How long it may be used, e.g. 4h (at most 7d)")] = "4h",
    output: OutputOpt = Format.table,
) -> None:
    """Ask to let one version through its service's freezes and required approvals; someone else approves."""
    body = {"service": service, "version": version, "reason": reason, "duration": duration}
    item = _call(Client().request, "POST", "/overrides", json=body)
    if output != Format.table:
        emit(item, output)
        return
    typer.echo(_override_line(item) + ". Someone else with rights on the service must approve it:")
    typer.echo(f"  relia policy override approve {item['id']}")


def _decide(override_id: int, verb: str, note: str | None, output: Format) -> None:
    item = _call(Client().request, "POST", f"/overrides/{override_id}/{verb}", json={"note": note or ""})
    if output != Format.table:
        emit(item, output)
        return
    typer.echo(_override_line(item) + (f" (by {item['decidedBy']})" if item.get("decidedBy") else ""))


@override_app.command("approve")
def override_approve(
    override_id: int,
    note: Annotated[str | None, typer.Option(help="Why it is approved")] = None,
    output: OutputOpt = Format.table,
) -> None:
    """Approve a pending override (not your own)."""
    _decide(override_id, "approve", note, output)


@override_app.command("reject")
def override_reject(
    override_id: int,
    note: Annotated[str | None, typer.Option(help="Why it is rejected")] = None,
    output: OutputOpt = Format.table,
) -> None:
    """Reject a pending override (not your own)."""
    _decide(override_id, "reject", note, output)


@override_app.command("list")
def override_list(
    service: Annotated[str | None, typer.Option(help="Only this service")] = None,
    status: Annotated[str | None, typer.Option(help="pending, approved, rejected or expired")] = None,
    output: OutputOpt = Format.table,
) -> None:
    """Overrides, newest first."""
    items = _call(Client().get, "/overrides", service=service, status=status)
    emit(
        items,
        output,
        columns=[
            ("#", "id"),
            ("Service", "service"),
            ("Version", "version"),
            ("Status", "status"),
            ("Asked by", "requestedBy"),
            ("Decided by", "decidedBy"),
            ("Until", "expiresAt"),
            ("Reason", "reason"),
        ],
    )


# -------------------------------------------------------------------------------------------------- report


@report_app.command("velocity")
def report_velocity(
    service: Annotated[str, typer.Option(help="The service")],
    period: Annotated[str, typer.Option(help="1d to 90d, e.g. 7d, 4w, 30d")] = "30d",
    output: OutputOpt = Format.table,
) -> None:
    """Budget left and its trend, freezes, gated releases, and a verdict: room to ship faster, on track, or slow
    down."""
    report = _call(Client().get, "/reports/velocity", service=service, period=period)
    if output != Format.table:
        emit(report, output)
        return
    console.print(
        f"[bold]{report['service']}[/] over the last {report['period']} "
        f"({report['start'][:16]} to {report['end'][:16]} UTC)",
        highlight=False,
    )
    console.print(f"Verdict: {VERDICT_STYLE.get(report['verdict'], report['verdict'])}", highlight=False)
    console.print(f"  {report['reason']}", highlight=False, soft_wrap=True)
    rows = [
        {
            "slo": item["slo"] if item["objective"] == "default" else f"{item['slo']}/{item['objective']}",
            "now": _percent(item["remainingNow"]),
            "start": _percent(item["remainingAtStart"]),
            "trend": item["trend"],
        }
        for item in report["budgets"]
    ]
    if rows:
        emit(
            rows,
            Format.table,
            columns=[("SLO", "slo"), ("Budget left", "now"), ("At start", "start"), ("Trend", "trend")],
        )
    else:
        console.print("No SLOs.")
    frozen = report["frozenMinutes"]
    console.print(
        f"Frozen: {len(report['freezes'])} freeze(s), {frozen / 60:.1f} h in the period"
        + (" · frozen now" if report["frozenNow"] else ""),
        highlight=False,
    )
    releases = report["releases"]
    console.print(
        f"Gate checks: {releases.get('allow', 0)} allowed, {releases.get('warn', 0)} warned, "
        f"{releases.get('block', 0)} blocked",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.add_typer(gate_app, name="gate")
    app.add_typer(policy_app, name="policy")
    app.add_typer(report_app, name="report")


__all__ = ["gate_app", "policy_app", "register", "report_app"]
