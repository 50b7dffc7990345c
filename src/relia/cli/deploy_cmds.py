"""`relia deploy ...`: start a blue-green deployment, follow it, and promote, resume or abort it. A client of
the API like every object verb; the worker (``relia worker`` or ``relia up``) moves deployments along."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.table import Table

from relia.cli.client import ApiError, Client
from relia.cli.output import Format, console, emit, error_console, print_problem

deploy_app = typer.Typer(help="Blue-green deployments: start, status, promote, resume, abort.", no_args_is_help=True)
OutputOpt = Annotated[Format, typer.Option("--output", "-o", help="table, json or yaml")]
ReasonOpt = Annotated[str, typer.Option("--reason", help="Why (goes to the audit log and the timeline)")]

STATE_STYLE = {
    "deploying": "[dim]◔ deploying[/]",
    "pre_analysis": "[dim]◑ analysing before the switch[/]",
    "awaiting_promotion": "[yellow]‖ awaiting promotion[/]",
    "paused": "[yellow]‖ paused for a person[/]",
    "switching": "[dim]⇄ switching[/]",
    "post_analysis": "[dim]◕ analysing after the switch[/]",
    "keeping_warm": "[dim]◒ keeping the old environment warm[/]",
    "aborting": "[yellow]▼ aborting[/]",
    "rolling_back": "[yellow]↩ rolling back[/]",
    "succeeded": "[green]✔ succeeded[/]",
    "aborted": "[dim]■ aborted[/]",
    "rolled_back": "[yellow]↩ rolled back[/]",
    "failed": "[red]✖ failed[/]",
}
# Exit statuses of `start --wait`: 0 succeeded, 1 ended otherwise (or an error), 3 waiting for a person.
NEEDS_A_PERSON = ("awaiting_promotion", "paused")


def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except ApiError as exc:
        print_problem(exc.problem, exc.status or None)
        gate = exc.problem.get("gate")
        if isinstance(gate, dict):
            for reason in gate.get("reasons") or []:
                error_console.print(f"  gate: {reason}", highlight=False, markup=False)
        raise typer.Exit(1) from exc


def _variables(pairs: list[str]) -> dict[str, str]:
    found = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"{pair!r}: give NAME=VALUE", param_hint="--var")
        found[name] = value
    return found


@deploy_app.command("start")
def deploy_start(
    service: Annotated[str, typer.Option("--service", "-s", help="The service to deploy")],
    version: Annotated[str, typer.Option("--version", "-v", help="What to deploy: a tag, commit or image")],
    change_type: Annotated[str, typer.Option(help="For the release gate: feature, fix, security, p0-fix, ...")] = (
        "feature"
    ),
    var: Annotated[list[str] | None, typer.Option("--var", help="NAME=VALUE for the adapter (repeatable)")] = None,
    reason: ReasonOpt = "",
    wait: Annotated[bool, typer.Option(help="Follow it until it ends or needs a person")] = False,
    timeout: Annotated[int, typer.Option(help="With --wait: give up after this many seconds", min=1)] = 3600,
    output: OutputOpt = Format.table,
) -> None:
    """Deploy VERSION to the service's idle environment; analysis, promotion and the switch follow."""
    client = Client()
    body = {
        "service": service,
        "version": version,
        "changeType": change_type,
        "variables": _variables(var or []),
        "reason": reason,
    }
    deployment = _call(client.request, "POST", "/deployments", json=body)
    if output != Format.table:
        emit(deployment, output)
    else:
        console.print(
            f"Deployment {deployment['id']}: {version} to {deployment['toEnvironment']} of {service} "
            f"({deployment['fromEnvironment']} is live). Follow it with: relia deploy status {deployment['id']}",
            highlight=False,
        )
    if wait:
        _follow(client, deployment["id"], timeout)


def _follow(client: Client, deployment_id: int, timeout: int) -> None:
    deadline = time.monotonic() + timeout
    shown = 0
    while True:
        deployment = _call(client.get, f"/deployments/{deployment_id}")
        for step in deployment["steps"][shown:]:
            console.print(f"{step['at'][:19]}  {step['type']:<28} {step['summary']}", highlight=False, markup=False)
        shown = len(deployment["steps"])
        state = deployment["state"]
        if deployment["finishedAt"]:
            raise typer.Exit(0 if state == "succeeded" else 1)
        if state in NEEDS_A_PERSON:
            console.print(f"Waiting for a person: relia deploy promote|resume|abort {deployment_id}", highlight=False)
            raise typer.Exit(3)
        if time.monotonic() > deadline:
            console.print(f"Still {state} after {timeout} s; it goes on without you.", highlight=False)
            raise typer.Exit(1)
        time.sleep(2)


@deploy_app.command("status")
def deploy_status(
    deployment_id: Annotated[int | None, typer.Argument(help="A deployment; without one, those under way")] = None,
    service: Annotated[str | None, typer.Option("--service", "-s", help="Only this service's deployments")] = None,
    output: OutputOpt = Format.table,
) -> None:
    """One deployment with its analysis and steps, or the deployments under way."""
    client = Client()
    if deployment_id is None:
        page = _call(client.get, "/deployments", service=service, active=None if service else True, limit=50)
        if output != Format.table:
            emit(page["items"], output)
            return
        if not page["items"]:
            console.print("No deployments under way." if not service else f"No deployments of {service}.")
            return
        table = Table(title="Deployments" + (f" of {service}" if service else " under way"))
        for header in ("Id", "Service", "Version", "From → to", "State", "Started (UTC)", "By"):
            table.add_column(header)
        for item in page["items"]:
            table.add_row(
                str(item["id"]),
                item["service"],
                item["version"],
                f"{item['fromEnvironment']} → {item['toEnvironment']}",
                STATE_STYLE.get(item["state"], item["state"]),
                item["createdAt"][:19].replace("T", " "),
                item["createdBy"],
            )
        console.print(table)
        return
    deployment = _call(client.get, f"/deployments/{deployment_id}")
    if output != Format.table:
        emit(deployment, output)
        return
    _print_deployment(deployment)


def _print_deployment(deployment: dict[str, Any]) -> None:
    console.print(
        f"[bold]Deployment {deployment['id']}[/] · {deployment['service']} · {deployment['version']} "
        f"({deployment['fromEnvironment']} → {deployment['toEnvironment']}) · "
        f"{STATE_STYLE.get(deployment['state'], deployment['state'])}",
        highlight=False,
    )
    if deployment.get("pauseReason"):
        console.print(f"Paused: {deployment['pauseReason']}", highlight=False, markup=False)
    if deployment.get("promotionDeadline"):
        console.print(f"Decide by {deployment['promotionDeadline'][:19]} UTC", highlight=False)
    if deployment.get("message"):
        console.print(f"Why: {deployment['message']}", highlight=False, markup=False)
    if deployment["allowedActions"]:
        verbs = "|".join(deployment["allowedActions"])
        console.print(f"You may: relia deploy {verbs} {deployment['id']}", highlight=False)
    analysis = deployment.get("analysis")
    if analysis:
        table = Table(title=f"Analysis ({analysis['phase']}, run {analysis['run']}): {analysis['status']}")
        for header in ("Check", "Type", "Measurements", "Result"):
            table.add_column(header)
        for check in analysis["checks"]:
            name = check["name"] + (" (dry run)" if check["dryRun"] else "")
            table.add_row(name, check["type"], str(check["measurements"]), check["phase"])
        console.print(table)
    table = Table(title="Steps")
    for header in ("When (UTC)", "Step", "What happened", "By"):
        table.add_column(header)
    for step in deployment["steps"]:
        table.add_row(step["at"][:19].replace("T", " "), step["type"], step["summary"], step["actor"] or "")
    console.print(table)


def _verb(verb: str, deployment_id: int, reason: str, output: Format) -> None:
    deployment = _call(Client().request, "POST", f"/deployments/{deployment_id}/{verb}", json={"reason": reason})
    if output != Format.table:
        emit(deployment, output)
        return
    console.print(
        f"Deployment {deployment_id}: {STATE_STYLE.get(deployment['state'], deployment['state'])}", highlight=False
    )


@deploy_app.command("promote")
def deploy_promote(deployment_id: int, reason: ReasonOpt = "", output: OutputOpt = Format.table) -> None:
    """Switch now (awaiting promotion), or go on after a paused analysis."""
    _verb("promote", deployment_id, reason, output)


@deploy_app.command("resume")
def deploy_resume(deployment_id: int, reason: ReasonOpt = "", output: OutputOpt = Format.table) -> None:
    """Run a paused deployment's analysis again."""
    _verb("resume", deployment_id, reason, output)


@deploy_app.command("abort")
def deploy_abort(deployment_id: int, reason: ReasonOpt = "", output: OutputOpt = Format.table) -> None:
    """Stop: before the switch nothing moves; after it, traffic goes back to the old environment."""
    _verb("abort", deployment_id, reason, output)


@deploy_app.command("targets")
def deploy_targets(output: OutputOpt = Format.table) -> None:
    """Each service's blue-green target: which environment is live and what runs where."""
    targets = _call(Client().get, "/deploy-targets")
    rows = [
        {
            "target": item["name"],
            "service": item["service"],
            "live": item["live"],
            "blue": next(env["version"] for env in item["environments"] if env["name"] == "blue"),
            "green": next(env["version"] for env in item["environments"] if env["name"] == "green"),
            "adapter": item["spec"]["adapter"]["type"],
            "underWay": item["activeDeployment"],
        }
        for item in targets
    ]
    emit(
        rows,
        output,
        columns=[
            ("Target", "target"),
            ("Service", "service"),
            ("Live", "live"),
            ("Blue", "blue"),
            ("Green", "green"),
            ("Adapter", "adapter"),
            ("Under way", "underWay"),
        ],
    )
