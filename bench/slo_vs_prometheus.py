"""Relia's evaluator next to Prometheus evaluating the same 1,000 SLOs as Sloth-style rules, in one run.

Relia: as bench/slo_evaluation.py, with the whole history (30 days by default) loaded at once: 1,000 pushed
SLOs, a first (recounting) tick, then --ticks minute ticks; the figure is the median minute tick.

Prometheus (the Debian package's `prometheus` and `promtool`), over the same traffic (bench/_slo.py: the
same seed, so every minute holds the same counts):

1. The same SLOs as Prometheus-fed specs (`ratio: {bad: sum(rate(http_requests_total{slo="sNNN",code=~"5.."}
   [{{.window}}])), total: sum(rate(http_requests_total{slo="sNNN"}[{{.window}}]))}`) go through
   `relia.slo.promrules.prometheus_rules` / `render_rules`: per SLO an SLI group (5m, 30m, 1h, 2h, 6h, 1d,
   3d and the 30d period as Sloth's mean of the 5m ratios), a metadata group and an alert group (page and
   ticket, multiwindow multi-burn-rate), 3,000 groups in all; `promtool check rules` checks the file.
2. History: `http_requests_total{slo, code="200"|"500", job, instance}` sampled every --scrape-interval
   seconds over the last --prom-days days, and the 5m error ratio Sloth's period rule averages
   (`slo:sli_error:ratio_rate5m`, one sample a minute, the labels the rule writes) over the same days, both
   written as OpenMetrics and turned into blocks with `promtool tsdb create-blocks-from openmetrics`.
   The backfill ends now; after that Prometheus scrapes a small exporter in this process that continues the
   very same counters, so the 5-minute windows always hold fresh data (blocks cannot reach into the future:
   Prometheus refuses to append anything older than its newest block, such as the rules' own results).
3. Prometheus starts on a free port of 127.0.0.1 with the rules file, evaluation_interval 1m; this script
   reads `/api/v1/rules` every 20 s and keeps every group's evaluations (time and `evaluationTime`). A round
   is every group's n-th evaluation; its figure is the sum of the 3,000 groups' `evaluationTime` (the groups
   run one after another within the minute, each on its own schedule, so the sum is the work of one minute).
   The first round reads cold blocks; the figure compared is the median of the rounds after it. The process'
   CPU time per minute is shown too (it includes scraping, the TSDB and the polling).

Goal (from the issue): Relia's minute tick no slower than Prometheus's evaluation round (ratio <= 1).

    .venv/bin/python bench/slo_vs_prometheus.py                       # SQLite, 30 d; Prometheus 3 d, 4 rounds
    .venv/bin/python bench/slo_vs_prometheus.py --backends sqlite,postgres
    .venv/bin/python bench/slo_vs_prometheus.py --slos 200 --days 7 --prom-days 1 --rounds 3

Needs `apt-get install prometheus` (promtool comes with it). The markdown is printed and written to
bench/results/slo_vs_prometheus.md, with prometheus.log and the last /api/v1/rules answer next to it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
from _common import (
    RESULTS_DIR,
    ROOT,
    background_cpu_busy,
    facts_table,
    free_port,
    http,
    machine_facts,
    markdown_table,
)
from _slo import DAY, Traffic, real_start, slo_body, slo_name
from api_throughput import DEFAULT_PG_URL, Backend, PostgresBackend, SqliteBackend
from slo_evaluation import BackendResult, bench_backend

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
JOB = "slo-traffic"
POLL_SECONDS = 20
HORIZON_MINUTES = 60
"""How long after the backfill the exporter's counters keep moving (the measurement takes a few minutes)."""


def bad_query(name: str) -> str:
    return f'sum(rate(http_requests_total{{slo="{name}",code=~"5.."}}[{{{{.window}}}}]))'


def total_query(name: str) -> str:
    return f'sum(rate(http_requests_total{{slo="{name}"}}[{{{{.window}}}}]))'


def prometheus_version() -> str:
    done = subprocess.run([PROMETHEUS, "--version"], capture_output=True, text=True)
    first = (done.stdout or done.stderr).splitlines()
    return first[0].removeprefix("prometheus, version ") if first else "unknown"


# ------------------------------------------------------------------------------------------------ counters


class Counters:
    """``http_requests_total{slo, code}`` at any instant from ``first`` (epoch minute) to ``first + minutes``:
    an offset, plus every request of the minutes before, plus the share of the current minute elapsed (the
    counter rises evenly within a minute). code="200" counts good requests, code="500" bad ones."""

    def __init__(self, traffic: Traffic, first: int, minutes: int) -> None:
        self.first, self.minutes, self.count = first, minutes, traffic.count
        self.cumulative = np.zeros((2, traffic.count, minutes + 1), dtype=np.int64)
        for index in range(traffic.count):
            good, total = traffic.counts(index, first, first + minutes)
            self.cumulative[0, index, 1:] = np.cumsum(good)
            self.cumulative[1, index, 1:] = np.cumsum(total - good)
        self.offset = 1_000_000 + 1000 * np.arange(traffic.count, dtype=np.int64)  # far from zero

    def values(self, code: int, index: int | slice, seconds: np.ndarray | float) -> np.ndarray:
        position = np.asarray(seconds, dtype=float) / 60 - self.first
        minute = np.clip(np.floor(position).astype(np.int64), 0, self.minutes - 1)
        share = np.clip(position - minute, 0.0, 1.0)
        cumulative = self.cumulative[code, index]
        before = cumulative[..., minute]
        within = cumulative[..., minute + 1] - before
        return self.offset[index] + before + np.floor(within * share).astype(np.int64)


def series_labels(name: str, code: str, instance: str) -> str:
    return f'{{code="{code}",instance="{instance}",job="{JOB}",slo="{name}"}}'


def write_openmetrics(
    path: Path,
    traffic: Traffic,
    counters: Counters,
    *,
    start: int,
    end: int,
    scrape: int,
    instance: str,
    ratio_labels: list[str],
) -> int:
    """Counters sampled every ``scrape`` seconds over [start, end] (epoch minutes), and the 5-minute error
    ratio at every minute in between; returns the samples written."""
    samples = 0
    times = np.arange(start * 60, end * 60 + 1, scrape)
    stamps = [str(t) for t in times.tolist()]
    with path.open("w") as out:
        out.write("# TYPE http_requests counter\n")
        for index in range(traffic.count):
            name = slo_name(index, traffic.count)
            for code_index, code in ((0, "200"), (1, "500")):
                prefix = f"http_requests_total{series_labels(name, code, instance)} "
                values = counters.values(code_index, index, times).tolist()
                out.write("".join([f"{prefix}{value} {stamp}\n" for value, stamp in zip(values, stamps, strict=True)]))
                samples += len(stamps)
        out.write("# TYPE slo:sli_error:ratio_rate5m gauge\n")
        minutes = np.arange(start + 5, end)
        for index in range(traffic.count):
            good, total = traffic.counts(index, start, end)
            bad_sum = np.convolve(total - good, np.ones(5), "valid")[: len(minutes)]  # minutes [m-5, m)
            total_sum = np.convolve(total, np.ones(5), "valid")[: len(minutes)]
            with np.errstate(invalid="ignore", divide="ignore"):
                ratio = bad_sum / total_sum
            prefix = f"slo:sli_error:ratio_rate5m{ratio_labels[index]} "
            out.write(
                "".join(
                    [
                        f"{prefix}{'NaN' if math.isnan(value) else repr(value)} {minute * 60}\n"
                        for value, minute in zip(ratio.tolist(), minutes.tolist(), strict=True)
                    ]
                )
            )
            samples += len(minutes)
        out.write("# EOF\n")
    return samples


class Exporter:
    """Serves the counters' current values on /metrics, as the instrumented services would."""

    def __init__(self, counters: Counters, traffic: Traffic, port: int) -> None:
        names = [slo_name(index, traffic.count) for index in range(traffic.count)]
        self.prefixes = [
            [f'http_requests_total{{slo="{name}",code="{code}"}} ' for name in names] for code in ("200", "500")
        ]
        self.counters = counters
        self.scrapes = 0
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = exporter.exposition(time.time()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                exporter.scrapes += 1

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def exposition(self, now: float) -> str:
        lines = ["# TYPE http_requests_total counter"]
        for code_index in (0, 1):
            values = self.counters.values(code_index, slice(None), now).tolist()
            lines += [prefix + str(value) for prefix, value in zip(self.prefixes[code_index], values, strict=True)]
        return "\n".join(lines) + "\n"

    def __enter__(self) -> Exporter:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------------------------------------- prometheus


@dataclass
class PrometheusResult:
    version: str
    groups: int = 0
    rules: int = 0
    steps: list[tuple[str, str, float]] = field(default_factory=list)  # (step, detail, seconds)
    rounds: list[float] = field(default_factory=list)  # sum of evaluationTime per round
    round_spread: list[float] = field(default_factory=list)  # seconds from a round's first to last group
    cpu_per_minute: float = 0.0
    by_rule: dict[str, float] = field(default_factory=dict)  # evaluationTime of the last round by rule name
    firing: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    compactions: int = 0
    scrapes: int = 0

    @property
    def steady(self) -> float:
        return statistics.median(self.rounds[1:]) if len(self.rounds) > 1 else float("nan")


def rule_name(rule: dict[str, Any]) -> str:
    return rule.get("name", "?")


def bench_prometheus(args: argparse.Namespace, traffic: Traffic, out_dir: Path) -> PrometheusResult:
    from relia.slo.promrules import SLI_ERROR_RECORD, prometheus_rules, render_rules
    from relia.slo.schemas import SLOSpec

    result = PrometheusResult(prometheus_version())
    with tempfile.TemporaryDirectory(prefix="relia-bench-prom-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        specs = []
        for index in range(traffic.count):
            name = slo_name(index, traffic.count)
            body = slo_body(
                index,
                traffic.count,
                traffic.profile(index),
                {"source": "prometheus", "ratio": {"bad": bad_query(name), "total": total_query(name)}},
            )
            specs.append((body.pop("name"), SLOSpec.model_validate(body)))
        rule_set = prometheus_rules(specs)
        rules_path = folder / "rules.yml"
        rules_path.write_text(render_rules(rule_set))
        result.groups = len(rule_set.groups)
        result.rules = sum(len(group.rules) for group in rule_set.groups)
        ratio_labels = []
        for group in rule_set.groups:
            for rule in group.rules:
                if rule.record == SLI_ERROR_RECORD + "5m":
                    ratio_labels.append("{" + ",".join(f'{k}="{v}"' for k, v in sorted(rule.labels.items())) + "}")
        assert len(ratio_labels) == traffic.count
        result.steps.append(
            (
                "rules",
                f"{result.groups:,} groups, {result.rules:,} rules, {rules_path.stat().st_size / 1e6:.1f} MB",
                time.perf_counter() - started,
            )
        )
        started = time.perf_counter()
        checked = subprocess.run([PROMTOOL, "check", "rules", str(rules_path)], capture_output=True, text=True)
        if checked.returncode != 0:
            raise RuntimeError(f"promtool check rules failed:\n{checked.stdout[-2000:]}\n{checked.stderr[-2000:]}")
        result.steps.append(("promtool check rules", "SUCCESS", time.perf_counter() - started))

        port, exporter_port = free_port(), free_port()
        instance = f"127.0.0.1:{exporter_port}"
        end = int(time.time()) // 60  # the backfill ends at the current minute; the exporter takes over
        first = end - args.prom_days * DAY
        started = time.perf_counter()
        counters = Counters(traffic, first, args.prom_days * DAY + HORIZON_MINUTES)
        history = folder / "history.om"
        samples = write_openmetrics(
            history,
            traffic,
            counters,
            start=first,
            end=end,
            scrape=args.scrape_interval,
            instance=instance,
            ratio_labels=ratio_labels,
        )
        result.steps.append(
            (
                "OpenMetrics history",
                f"{samples:,} samples, {history.stat().st_size / 1e6:,.0f} MB",
                time.perf_counter() - started,
            )
        )
        started = time.perf_counter()
        blocks = subprocess.run(
            [
                PROMTOOL,
                "tsdb",
                "create-blocks-from",
                "openmetrics",
                f"--max-block-duration={24 * (args.prom_days + 1)}h",
                str(history),
                str(folder / "data"),
            ],
            capture_output=True,
            text=True,
        )
        if blocks.returncode != 0:
            raise RuntimeError(f"promtool create-blocks-from failed:\n{blocks.stdout[-2000:]}\n{blocks.stderr[-2000:]}")
        history.unlink()
        block_count = sum(1 for path in (folder / "data").iterdir() if path.is_dir() and (path / "meta.json").exists())
        result.steps.append(
            ("promtool tsdb create-blocks-from openmetrics", f"{block_count} blocks", time.perf_counter() - started)
        )

        (folder / "prometheus.yml").write_text(
            "global:\n"
            f"  scrape_interval: {args.scrape_interval}s\n"
            "  evaluation_interval: 1m\n"
            f"rule_files: [{json.dumps(str(rules_path))}]\n"
            "scrape_configs:\n"
            f"  - job_name: {JOB}\n"
            f"    static_configs: [{{targets: ['{instance}']}}]\n"
        )
        log_path = out_dir / "prometheus.log"
        with Exporter(counters, traffic, exporter_port) as exporter, log_path.open("wb") as log:
            started = time.perf_counter()
            process = subprocess.Popen(
                [
                    PROMETHEUS,
                    f"--config.file={folder / 'prometheus.yml'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    f"--storage.tsdb.path={folder / 'data'}",
                    "--storage.tsdb.retention.time=60d",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            base = f"http://127.0.0.1:{port}"
            try:
                deadline = time.monotonic() + 120
                while http("GET", base + "/-/ready")[0] != 200:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"prometheus did not start; see {log_path}")
                    time.sleep(0.2)
                result.steps.append(("Prometheus ready", f"127.0.0.1:{port}", time.perf_counter() - started))
                observe(base, process.pid, args.rounds, result, out_dir)
                result.firing = firing_alerts(base)
                result.scrapes = exporter.scrapes
            finally:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        log_text = log_path.read_text(errors="replace")
        result.compactions = log_text.count("compact blocks")
        if time.time() / 60 > end + HORIZON_MINUTES - 2:
            result.errors.append("the run outlasted the exporter's horizon: counters stopped moving")
    return result


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def observe(base: str, pid: int, rounds: int, result: PrometheusResult, out_dir: Path) -> None:
    """Poll /api/v1/rules until every group has been evaluated ``rounds`` times."""
    evaluations: dict[str, dict[str, float]] = defaultdict(dict)  # group -> lastEvaluation -> evaluationTime
    last_answer: dict[str, Any] = {}
    cpu_marks: list[tuple[float, float]] = []
    deadline = time.monotonic() + 60 * (rounds + 3)
    while time.monotonic() < deadline:
        status, body = http("GET", base + "/api/v1/rules", timeout=60)
        if status != 200:
            raise RuntimeError(f"/api/v1/rules answered {status}: {body[:300]!r}")
        answer = json.loads(body)
        groups = answer["data"]["groups"]
        for group in groups:
            if not group["lastEvaluation"].startswith("0001-"):
                evaluations[group["name"]][group["lastEvaluation"]] = group["evaluationTime"]
        done = min((len(evaluations.get(group["name"], {})) for group in groups), default=0)
        if done >= 1:
            cpu_marks.append((time.monotonic(), cpu_seconds(pid)))
        print(f"    Prometheus: every group evaluated at least {done} time(s)", flush=True)
        if done >= rounds:
            last_answer = answer
            break
        time.sleep(POLL_SECONDS)
    else:
        raise RuntimeError(f"Prometheus did not evaluate every group {rounds} times in time")
    for number in range(rounds):
        times = [sorted(found.items())[number] for found in evaluations.values()]
        result.rounds.append(sum(seconds for _, seconds in times))
        stamps = sorted(datetime.fromisoformat(stamp[:26].rstrip("Z") + "+00:00") for stamp, _ in times)
        result.round_spread.append((stamps[-1] - stamps[0]).total_seconds())
    if len(cpu_marks) >= 2:
        (t0, c0), (t1, c1) = cpu_marks[0], cpu_marks[-1]
        result.cpu_per_minute = (c1 - c0) / ((t1 - t0) / 60)
    by_rule: dict[str, float] = defaultdict(float)
    for group in last_answer["data"]["groups"]:
        for rule in group["rules"]:
            key = rule_name(rule) if rule.get("type") == "recording" else "alerting rules (page and ticket)"
            by_rule[key] += rule.get("evaluationTime", 0.0)
            if rule.get("health") not in ("ok", "unknown") or rule.get("lastError"):
                result.errors.append(f"{group['name']} {rule_name(rule)}: {rule.get('lastError')}")
    result.by_rule = dict(sorted(by_rule.items(), key=lambda item: -item[1]))
    (out_dir / "prometheus-rules.json").write_text(json.dumps(last_answer))


def firing_alerts(base: str) -> dict[str, int]:
    status, body = http("GET", base + "/api/v1/alerts", timeout=60)
    if status != 200:
        return {}
    counts: dict[str, int] = defaultdict(int)
    for alert in json.loads(body)["data"]["alerts"]:
        if alert["state"] == "firing":
            counts[alert["labels"].get("sloth_severity", "?")] += 1
    return dict(counts)


# ------------------------------------------------------------------------------------------------- reports


def report(
    relia: list[BackendResult], prom: PrometheusResult, args: argparse.Namespace, facts: dict[str, str], busy: float
) -> str:
    steady = prom.steady
    rows = [
        [
            f"Prometheus {prom.version.split(' ')[0]}",
            f"{args.prom_days} d raw at {args.scrape_interval} s + {args.prom_days} d of 5m ratios",
            f"{prom.rounds[0]:.3f}" if prom.rounds else "",
            f"{steady:.3f}",
            f"sum of {prom.groups:,} groups' evaluationTime; rounds {', '.join(f'{r:.3f}' for r in prom.rounds)}; "
            f"process CPU {prom.cpu_per_minute:.2f} s/min",
            "1.00",
        ]
    ]
    goals = []
    for result in relia:
        phase = result.phases[-1].phase
        median = statistics.median(phase.steady_walls)
        ratio = median / steady if steady else float("nan")
        rows.append(
            [
                f"Relia on {result.name}",
                f"{result.phases[-1].days} d, per minute",
                f"{phase.first['wall']:.2f} (recount)",
                f"{median:.3f}",
                f"minute tick, median of {len(phase.steady_walls)} (max {max(phase.steady_walls):.3f}); "
                f"worker CPU {statistics.median(t['cpu'] for t in phase.steady):.3f} s/tick",
                f"{ratio:.2f}",
            ]
        )
        verdict = "met" if ratio <= 1 else "NOT met"
        goals.append(
            f"- Relia on {result.name}: minute tick {median:.3f} s vs Prometheus round {steady:.3f} s: ratio "
            f"{ratio:.2f} (goal <= 1): **{verdict}**"
        )
    table = markdown_table(["System", "History", "First s", "Per minute s", "What", "Relia / Prometheus"], rows)
    top = [
        [name, f"{seconds:.3f}", f"{seconds / max(sum(prom.by_rule.values()), 1e-9):.0%}"]
        for name, seconds in list(prom.by_rule.items())[:12]
    ]
    by_rule = markdown_table(
        [f"Prometheus rule (all {args.slos:,} SLOs), last round", "evaluationTime s", "share"], top
    )
    steps = markdown_table(
        ["Prometheus setup step (not measured)", "", "Seconds"],
        [[step, detail, f"{seconds:.1f}"] for step, detail, seconds in prom.steps],
    )
    relia_states = "; ".join(
        f"Relia on {r.name}: {r.states.get('page', 0)} page and {r.states.get('ticket', 0)} ticket alerts active"
        for r in relia
    )
    notes = [
        f"- Alerts firing at the end: Prometheus {prom.firing.get('page', 0)} page, {prom.firing.get('ticket', 0)} "
        f"ticket; {relia_states} (the two differ where the rules and Relia count differently: Sloth's period is a "
        "mean of 5m ratios, rate() extrapolates, and Relia's no-data and window edges are exact minutes).",
        f"- A round's groups ran over {statistics.median(prom.round_spread):.0f} s of the minute (median); "
        f"{prom.scrapes} scrapes of the exporter; {prom.compactions} block compactions logged during the run.",
    ]
    if prom.errors:
        notes.append(f"- Rule errors: {len(prom.errors)}, e.g. {prom.errors[0]}")
    command = " ".join([".venv/bin/python", "bench/slo_vs_prometheus.py", *sys.argv[1:]])
    return "\n".join(
        [
            f"### SLO evaluation: Relia and Prometheus ({time.strftime('%Y-%m-%d %H:%M %Z')})",
            "",
            f"`{command}`: the same {args.slos:,} SLOs and per-minute traffic; Relia ticks on a simulated clock "
            f"with {args.days} d of history, Prometheus evaluates Sloth-style rules (3 groups per SLO) every minute "
            f"over {args.prom_days} d of backfilled history and a live scrape. CPU busy before the run: {busy:.0%}.",
            "",
            table,
            "",
            *goals,
            "",
            *notes,
            "",
            by_rule,
            "",
            steps,
            "",
            facts_table(facts),
            "",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="sqlite", help="Relia's database(s): sqlite (default), postgres or both")
    parser.add_argument("--pg-url", default=os.environ.get("RELIA_BENCH_PG_URL", DEFAULT_PG_URL))
    parser.add_argument("--slos", type=int, default=1000)
    parser.add_argument("--days", type=int, default=30, help="Relia's history in days")
    parser.add_argument("--ticks", type=int, default=10)
    parser.add_argument(
        "--prom-days", type=int, default=3, help="Prometheus history in days (3 d: the longest alert window)"
    )
    parser.add_argument("--scrape-interval", type=int, default=30, help="seconds between samples of the counters")
    parser.add_argument("--rounds", type=int, default=4, help="evaluation rounds to wait for (the first is cold)")
    parser.add_argument("--seed", type=int, default=20261126)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "slo_vs_prometheus.md")
    args = parser.parse_args()
    if not (Path(PROMETHEUS).exists() and Path(PROMTOOL).exists()):
        print("prometheus and promtool are needed: apt-get install prometheus", file=sys.stderr)
        return 2
    if args.rounds < 2 or not 1 <= args.days <= 30 or args.prom_days < 1 or not 1 <= args.scrape_interval <= 60:
        parser.error("--rounds >= 2, --days 1..30, --prom-days >= 1, --scrape-interval 1..60")
    backends: list[Backend] = []
    postgres_version = None
    for name in [name.strip() for name in args.backends.split(",") if name.strip()]:
        if name == "sqlite":
            backends.append(SqliteBackend())
        elif name in ("postgres", "postgresql"):
            pg = PostgresBackend(args.pg_url)
            postgres_version = pg.server_version()
            backends.append(pg)
        else:
            parser.error(f"unknown backend {name!r}")
    out_dir = args.out.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    facts = machine_facts(postgres_version=postgres_version)
    facts["Prometheus"] = prometheus_version()
    busy = background_cpu_busy()
    if busy > 0.15:
        print(f"warning: the CPUs are {busy:.0%} busy before the run; figures will be high", file=sys.stderr)

    start = real_start()
    traffic = Traffic(args.slos, seed=args.seed, now_minute=int(start.timestamp()) // 60)
    args.history = [args.days]
    relia = []
    for backend in backends:
        print(f"Relia on {backend.name}:", flush=True)
        relia.append(bench_backend(backend, args, out_dir, start))
    print("Prometheus:", flush=True)
    prom = bench_prometheus(args, traffic, out_dir)

    text = report(relia, prom, args, facts, busy)
    args.out.write_text(text)
    print()
    print(text)
    print(f"(written to {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out})")
    return 1 if prom.errors or any(result.mismatches for result in relia) else 0


if __name__ == "__main__":
    sys.exit(main())
