"""`relia slo ...`: SLO status from a terminal, backtests, and (with the import/export modules) rules and
OpenSLO export."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from relia.cli.client import ApiError, Client
from relia.cli.output import Format, console, emit, print_problem

slo_app = typer.Typer(help="Service level objectives: status, history, backtests, rules.", no_args_is_help=True)
OutputOpt = Annotated[Format, typer.Option("--output", "-o", help="table, json or yaml")]

STATE_STYLE = {
    "healthy": "[green]● healthy[/]",
    "at_risk": "[yellow]▲ at risk[/]",
    "exhausted": "[red]✖ exhausted[/]",
    "no_data": "[dim]○ no data[/]",
    "pending": "[dim]… pending[/]",
}
SPARK = "▁▂▃▄▅▆▇█"


def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except ApiError as exc:
        print_problem(exc.problem, exc.status or None)
        raise typer.Exit(1) from exc


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f} %"


def _duration(minutes: float | None) -> str:
    if minutes is None:
        return "never (not burning)"
    if minutes <= 0:
        return "now (exhausted)"
    days, rest = divmod(int(minutes), 24 * 60)
    hours, mins = divmod(rest, 60)
    return " ".join(part for part in (f"{days}d" if days else "", f"{hours}h" if hours else "", f"{mins}m") if part)


def sparkline(values: list[float | None]) -> str:
    """Budget remaining as blocks: full at 100 % or more, lowest at 0 % or less; gaps for no data."""
    out = []
    for value in values:
        if value is None:
            out.append(" ")
        else:
            clamped = min(1.0, max(0.0, value))
            out.append(SPARK[min(len(SPARK) - 1, int(clamped * (len(SPARK) - 1) + 0.5))])
    return "".join(out)


@slo_app.command("list")
def slo_list(
    service: Annotated[str | None, typer.Option(help="Only this service's SLOs")] = None,
    state: Annotated[str | None, typer.Option(help="healthy, at_risk, exhausted, no_data or pending")] = None,
    output: OutputOpt = Format.table,
) -> None:
    """SLOs sorted by remaining error budget, least first."""
    page = _call(Client().get, "/slos", service=service, state=state, sort="budget")
    rows = []
    for slo in page["items"]:
        for objective in slo["objectives"]:
            detail = objective.get("detail") or {}
            alerts = detail.get("alerts") or {}
            rows.append(
                {
                    "slo": slo["name"]
                    if objective["objective"] == "default"
                    else f"{slo['name']}/{objective['objective']}",
                    "service": slo["service"],
                    "target": f"{objective['target'] * 100:g} %",
                    "sli": _percent(detail.get("sli")),
                    "budgetRemaining": _percent(objective.get("budgetRemaining")),
                    "state": objective["state"],
                    "alerts": ", ".join(name for name in ("page", "ticket") if alerts.get(name)) or "-",
                }
            )
    if output != Format.table:
        emit(rows, output)
        return
    from rich.table import Table

    table = Table(title="SLOs by remaining error budget")
    for header in ("SLO", "Service", "Target", "SLI", "Budget left", "State", "Alerts"):
        table.add_column(header)
    for row in rows:
        table.add_row(
            row["slo"],
            row["service"],
            row["target"],
            row["sli"],
            row["budgetRemaining"],
            STATE_STYLE.get(row["state"], row["state"]),
            row["alerts"],
        )
    console.print(table)


@slo_app.command("status")
def slo_status(name: str, output: OutputOpt = Format.table) -> None:
    """Budget, burn rate per window, forecast and a sparkline of the budget over the window."""
    client = Client()
    slo = _call(client.get, f"/slos/{name}")
    if output != Format.table:
        emit(slo, output)
        return
    spec = slo["spec"]
    window = spec["window"].get("rolling") or f"calendar {spec['window']['calendar']} ({spec['window']['timeZone']})"
    console.print(f"[bold]{slo['name']}[/] · service {slo['service']} · {spec['budgetingMethod']} over {window}")
    source = slo["source"]
    feed = source["kind"] if not source.get("dataSource") else f"{source['kind']} ({source['dataSource']})"
    console.print(f"source: {feed}" + (f" · [red]failing: {source['lastError']}[/]" if source.get("failing") else ""))
    for lint in slo["lints"]:
        console.print(f"[yellow]warning[/]: {lint}")
    now = datetime.now(UTC)
    for objective in slo["objectives"]:
        detail = objective.get("detail")
        console.print(
            f"\n[bold]objective {objective['objective']}[/] · target {objective['target'] * 100:g} % · "
            f"{STATE_STYLE.get(objective['state'], objective['state'])}"
        )
        if not detail:
            console.print("  not evaluated yet")
            continue
        budget = detail["budget"]
        console.print(
            f"  SLI {_percent(detail['sli'])} · budget left {_percent(budget['remainingFraction'])}"
            + (
                f" ({budget['remaining']:.0f} of {budget['total']:.0f} {budget['unit']})"
                if budget.get("total") is not None and budget.get("remaining") is not None
                else ""
            )
        )
        rates = "  ".join(
            f"{window}: {'-' if rate is None else f'{rate:.2f}x'}" for window, rate in detail["burnRates"].items()
        )
        console.print(f"  burn rate  {rates}")
        alerts = detail["alerts"]
        console.print(
            "  alerts     "
            + ", ".join(
                [
                    f"[red]page ({alerts['pageTier']})[/]" if alerts["page"] else "page: quiet",
                    f"[yellow]ticket ({alerts['ticketTier']})[/]" if alerts["ticket"] else "ticket: quiet",
                ]
            )
        )
        forecast = detail["forecast"]
        console.print(
            f"  forecast   exhausted in {_duration(forecast['minutesToExhaustion'])} at the last hour's "
            f"burn; {_percent(forecast['remainingAtPeriodEnd'])} left at the end of the period"
        )
        start = datetime.fromisoformat(detail["window"]["start"])
        end = datetime.fromisoformat(detail["window"]["end"])
        if end > start:
            step = max(1, int((end - start).total_seconds() // 60 // 60))
            history = _call(
                client.get,
                f"/slos/{name}/history",
                start=start.isoformat(),
                end=min(end, now).isoformat(),
                step=step,
                objective=objective["objective"],
            )
            console.print(f"  budget     {sparkline([point['budgetRemaining'] for point in history['points']])}")


@slo_app.command("backtest")
def slo_backtest(
    name: Annotated[str | None, typer.Argument(help="An SLO; leave out with --synthetic")] = None,
    since: Annotated[str, typer.Option("--since", help="How far back to replay, e.g. 7d")] = "7d",
    step_seconds: Annotated[int, typer.Option("--step", help="Replay step in seconds (1-60)")] = 60,
    synthetic: Annotated[str | None, typer.Option(help="outage: replay a synthetic 100 % outage instead")] = None,
    tiers: Annotated[bool, typer.Option("--tiers", help="Also show when each tier fired and reset")] = False,
    target: Annotated[str, typer.Option(help="--synthetic: the objective, e.g. 99.9%")] = "99.9%",
    window: Annotated[str, typer.Option(help="--synthetic: the SLO window")] = "30d",
    outage: Annotated[str, typer.Option(help="--synthetic: how long the outage lasts")] = "10m",
    output: OutputOpt = Format.table,
) -> None:
    """When page and ticket alerts would have fired and reset, replaying history through the alert rules."""
    if synthetic is not None:
        result = synthetic_outage(target=target, window=window, outage=outage, step_seconds=step_seconds)
    else:
        if name is None:
            raise typer.BadParameter("give an SLO name, or --synthetic outage")
        from relia.slo import rules

        end = datetime.now(UTC)
        start = end - timedelta(minutes=rules.parse_duration(since))
        result = _call(
            Client().get,
            f"/slos/{name}/backtest",
            start=start.isoformat(),
            end=end.isoformat(),
            stepSeconds=step_seconds,
        )
    if output != Format.table:
        emit(result, output)
        return
    console.print(
        "tiers: "
        + "; ".join(
            f"{tier['name']} {tier['long']}/{tier['short']} x{tier['factor']:g}"
            for tier in result["tiers"]
            if tier["factor"] is not None
        )
    )
    if not result["events"]:
        console.print("No alert would have fired.")
    shown = [(event["severity"], event) for event in result["events"]]
    if tiers:
        shown += [(f"tier {event['tier']}", event) for event in result.get("tierEvents", [])]
    for what, event in shown:
        when = event.get("offset") or event["at"]
        console.print(
            f"{when:<8} {what:<18} {event['kind']:<5} via {event['tier']:<12} "
            f"long {_rate(event['longBurnRate'])} short {_rate(event['shortBurnRate'])} "
            f"budget spent {_percent(event['budgetSpent'])}"
        )


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}x"


def synthetic_outage(*, target: str, window: str, outage: str, step_seconds: int) -> dict[str, Any]:
    """A full SLO window of steady traffic, then a 100 % outage, then recovery: the SRE Workbook's case."""
    import numpy as np

    from relia.slo import rules
    from relia.slo.history import event_out

    period = rules.parse_duration(window)
    spec = rules.SLOSpec(
        target=rules.parse_target(target), budgeting=rules.Budgeting.occurrences(), window=rules.RollingWindow(period)
    )
    policy = rules.alert_policy(spec)
    steps_per_minute = 60 // step_seconds
    history = period * steps_per_minute
    outage_steps = rules.parse_duration(outage) * steps_per_minute
    after = max(policy.windows, default=60) * steps_per_minute
    total = np.full(history + outage_steps + after, 1.0)
    good = total.copy()
    good[history : history + outage_steps] = 0.0
    result = rules.backtest(
        good, total, policy=policy, step_seconds=step_seconds, evaluate_from=history * step_seconds + step_seconds
    )

    def with_offset(event: rules.AlertEvent) -> dict[str, Any]:
        item = event_out(event)
        item["offset"] = f"+{event.time - history * step_seconds}s"
        return item

    return {
        "synthetic": f"100 % outage of {outage} at {target} over {window}, {step_seconds}s steps",
        "tiers": [
            {
                "name": rule.name,
                "severity": str(rule.severity),
                "long": rules.format_duration(rule.tier.long_minutes),
                "short": rules.format_duration(rule.tier.short_minutes),
                "factor": rule.factor_float,
                "threshold": rule.threshold_float,
            }
            for rule in policy.rules
        ],
        "events": [with_offset(event) for event in result.events],
        "tierEvents": [with_offset(event) for event in result.tier_events],
    }


def _specs_from_files(paths: list[Path]) -> list[tuple[str, Any]]:
    """SLO specs from config files (Relia, Sloth, OpenSLO, Pyrra), read offline."""
    from relia.cli.config_cmds import _read, _report_problems
    from relia.config import service as config_service
    from relia.config.documents import ConfigInvalid, SourceFile

    files = _read(paths)
    try:
        loaded = config_service.load_objects([SourceFile(**item) for item in files])
    except ConfigInvalid as exc:
        _report_problems([problem.as_dict() for problem in exc.problems], "Invalid configuration")
    return [(obj.name, obj.spec) for obj in loaded.objects if obj.kind == "SLO"]


def _specs_from_server() -> list[tuple[str, Any]]:
    from relia.slo.schemas import SLOSpec

    page = _call(Client().get, "/slos", sort="name")
    return [(slo["name"], SLOSpec.model_validate(slo["spec"])) for slo in page["items"]]


@slo_app.command("rules")
def slo_rules(
    paths: Annotated[
        list[Path] | None, typer.Option("--file", "-f", help="Read SLOs from files (Relia, Sloth, OpenSLO, Pyrra)")
    ] = None,
    period: Annotated[str | None, typer.Option(help="Export every SLO over this period, e.g. 28d")] = None,
    windows: Annotated[
        Path | None, typer.Option(help="A Sloth AlertWindows file (custom alert windows; sets the period)")
    ] = None,
    label: Annotated[list[str] | None, typer.Option("--label", "-l", help="k=v added to recording rules")] = None,
    alerts: Annotated[bool, typer.Option(help="Include the burn-rate alerts")] = True,
    recordings: Annotated[bool, typer.Option(help="Include the recording rules")] = True,
    kubernetes: Annotated[
        str | None, typer.Option("--kubernetes", help="Wrap as a prometheus-operator PrometheusRule of this name")
    ] = None,
    namespace: Annotated[str | None, typer.Option(help="--kubernetes: the namespace")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write here instead of stdout")] = None,
) -> None:
    """A Prometheus rule file with Sloth's record names and labels: SLI recording rules for every window and
    the multiwindow multi-burn-rate page and ticket alerts. Check it with `promtool check rules`."""
    import yaml

    from relia.core.errors import ReliaError
    from relia.slo import promrules, rules

    extra: dict[str, str] = {}
    for item in label or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{item!r}: use key=value", param_hint="--label")
        extra[key] = value
    catalog = None
    if windows is not None:
        try:
            catalog = rules.alert_catalog_from_sloth(yaml.safe_load(windows.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError, yaml.YAMLError) as exc:
            raise typer.BadParameter(f"{windows}: {exc}", param_hint="--windows") from exc
    period_minutes = rules.parse_duration(period) if period else None
    slos = _specs_from_files(paths) if paths else _specs_from_server()
    exportable = [(name, spec) for name, spec in slos if _has_queries(spec)]
    for name, spec in slos:
        if not _has_queries(spec):
            typer.echo(f"note: skipped SLO {name}: its events are pushed, so Prometheus cannot compute it", err=True)
    kubernetes_mode = kubernetes is not None
    options = promrules.RuleOptions(
        period_minutes=period_minutes if catalog is None else None,
        catalog=catalog,
        extra_labels=extra,
        alerts=alerts,
        recordings=recordings,
        sloth_mode="cli-gen-k8s" if kubernetes_mode else "cli-gen-prom",
        sloth_spec="sloth.slok.dev/v1" if kubernetes_mode else "prometheus/v1",
    )
    try:
        rule_set = promrules.prometheus_rules(exportable, options)
    except ReliaError as exc:
        print_problem(exc.problem())
        raise typer.Exit(1) from exc
    for warning in rule_set.warnings:
        typer.echo(f"warning: {warning}", err=True)
    text = (
        promrules.render_prometheus_rule(rule_set, name=kubernetes, namespace=namespace)
        if kubernetes_mode
        else promrules.render_rules(rule_set)
    )
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        console.print(f"wrote {out} ({sum(len(group.rules) for group in rule_set.groups)} rules)", highlight=False)


def _has_queries(spec: Any) -> bool:
    from relia.slo import service

    return spec.indicator.source is not None and service._has_queries(spec)


@slo_app.command("export")
def slo_export(
    export_format: Annotated[str, typer.Option("--format", help="openslo (OpenSLO v1)")] = "openslo",
    paths: Annotated[list[Path] | None, typer.Option("--file", "-f", help="Convert files instead")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write here instead of stdout")] = None,
) -> None:
    """SLOs (and their data sources) as OpenSLO v1 documents that import back to no changes."""
    from relia.config.documents import dump
    from relia.slo.openslo_export import export_openslo
    from relia.slo.schemas import DataSourceSpec

    if export_format != "openslo":
        raise typer.BadParameter("only openslo is supported", param_hint="--format")
    if paths:
        slos = _specs_from_files(paths)
        sources: list[tuple[str, DataSourceSpec]] = []
    else:
        slos = _specs_from_server()
        client = Client()
        sources = [
            (item["name"], DataSourceSpec.model_validate(item["spec"]))
            for item in _call(client.get, "/data-sources")
            if "********" not in str(item["spec"].get("headers", {}))
        ]
    exported = export_openslo(dict(slos), dict(sources))
    for warning in exported.warnings:
        typer.echo(f"warning: {warning}", err=True)
    text = dump(list(exported.documents))
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        console.print(f"wrote {out} ({len(exported.documents)} documents)", highlight=False)
