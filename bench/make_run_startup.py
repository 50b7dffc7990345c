"""`make run` startup: seconds from the command to an HTTP 200 from /readyz, on a warm machine.

Each round runs `make run` in its own process group (setsid) with a fresh temporary RELIA_DATA_DIR and a
free RELIA_PORT, polls /readyz until it answers 200, then sends SIGINT to the whole group (what Ctrl-C in a
terminal does) and checks that everything exits cleanly: `relia up` says "Relia stopped.", no process of the
group is left, and the port is free again. A second `make run` on the same data directory is timed as well
(the reuse case: migrations and the demo organisation are already there).

Milestones come from what `make run` prints (database migrated, examples applied, demo ready, children
started), time-stamped as the lines arrive, so the report says where the seconds go.

    .venv/bin/python bench/make_run_startup.py              # 3 rounds (plus one unmeasured warm-up)
    .venv/bin/python bench/make_run_startup.py --rounds 5

Goal: the median fresh start under 10 s. The markdown is printed and written to
bench/results/make_run_startup.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from _common import (
    RESULTS_DIR,
    ROOT,
    background_cpu_busy,
    facts_table,
    free_port,
    http,
    machine_facts,
    markdown_table,
    sigint_reaches_children,
)

GOAL_SECONDS = 10.0
# Milestones in what `make run` prints, first match wins: (column, markers). They cover both `relia up
# --migrate --apply examples/ --demo` in one process and separate `relia db upgrade/apply/demo` commands.
MILESTONES = [
    ("migrated", ("Database migrated", "Database at ")),
    ("examples applied", ("Applied",)),
    ("demo ready", ("Sign in:",)),
    ("children started", ("Relia is starting",)),
]


@dataclass
class Round:
    kind: str  # "fresh" or "reuse"
    ready_s: float | None = None
    healthz_s: float | None = None
    milestones: dict[str, float] = field(default_factory=dict)  # seconds after the command started
    exit_code: int | None = None
    stop_s: float | None = None
    cpu_s: float | None = None  # user + system CPU of make and everything it started, start to exit
    clean: bool = False
    problems: list[str] = field(default_factory=list)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def run_once(kind: str, data_dir: Path, log_path: Path, timeout: float) -> Round:
    port = free_port()
    env = {
        **os.environ,
        "RELIA_DATA_DIR": str(data_dir),
        "RELIA_PORT": str(port),
        "RELIA_HOST": "127.0.0.1",
    }
    # Settings that would point `make run` somewhere else must not leak in from the caller's shell.
    for name in ("RELIA_DATABASE_URL", "RELIA_QUEUE_URL", "RELIA_SECRET_KEY", "MAKEFLAGS", "MAKELEVEL"):
        env.pop(name, None)
    result = Round(kind)
    log = log_path.open("w")
    usage_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    process = subprocess.Popen(
        ["make", "--no-print-directory", "run"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        start_new_session=True,
    )
    pgid = process.pid
    output: list[str] = []

    def read_stdout() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            now = time.monotonic() - started
            output.append(line)
            log.write(f"[{now:7.3f}s stdout] {line}")
            log.flush()
            for name, markers in MILESTONES:
                if name not in result.milestones and any(marker in line for marker in markers):
                    result.milestones[name] = now

    reader = threading.Thread(target=read_stdout, daemon=True)
    reader.start()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = started + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                result.problems.append(f"make exited with {process.returncode} before /readyz answered 200")
                break
            if result.healthz_s is None and http("GET", base + "/healthz", timeout=1.0)[0] == 200:
                result.healthz_s = time.monotonic() - started
            status, _ = http("GET", base + "/readyz", timeout=1.0)
            if status == 200:
                result.ready_s = time.monotonic() - started
                break
            time.sleep(0.05)
        else:
            result.problems.append(f"/readyz did not answer 200 within {timeout:.0f} s")
    finally:
        stop_started = time.monotonic()
        if _group_alive(pgid):
            os.killpg(pgid, signal.SIGINT)
        try:
            result.exit_code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            result.problems.append("make did not exit within 30 s of SIGINT")
        # The group is empty once every child has gone, not just make.
        while _group_alive(pgid) and time.monotonic() - stop_started < 30:
            time.sleep(0.05)
        result.stop_s = time.monotonic() - stop_started
        if _group_alive(pgid):
            result.problems.append("processes of the group were still running 30 s after SIGINT; killed")
            os.killpg(pgid, signal.SIGKILL)
            process.wait()
        reader.join(timeout=5)
        log.close()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    result.cpu_s = (usage.ru_utime - usage_before.ru_utime) + (usage.ru_stime - usage_before.ru_stime)
    text = "".join(output)
    if "Relia stopped." not in text:
        result.problems.append("`relia up` did not print 'Relia stopped.'")
    if _listening(port):
        result.problems.append(f"something still listens on port {port} after the stop")
    errors = [
        line
        for line in log_path.read_text().splitlines()
        if '"level": "error"' in line or "Traceback" in line or "keeps exiting" in line or "make: ***" in line
    ]
    if errors:
        result.problems.append(f"{len(errors)} error lines in the log, first: {errors[0][:200]}")
    result.clean = not result.problems
    return result


def fmt(seconds: float | None) -> str:
    return f"{seconds:.2f}" if seconds is not None else "-"


def exit_label(code: int | None) -> str:
    """make itself gets the SIGINT too and ends by it, as after Ctrl-C in a terminal."""
    if code is None:
        return "-"
    return f"{signal.Signals(-code).name}" if code < 0 else str(code)


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def report(rounds: list[Round], warmup: Round | None, facts: dict[str, str], busy: float) -> str:
    header = [
        "Round",
        "Data dir",
        *(f"{name} s" for name, _ in MILESTONES),
        "/healthz 200 s",
        "/readyz 200 s",
        "CPU s",
        "exit",
        "stop s",
        "clean",
    ]
    rows = []
    shown = ([warmup] if warmup else []) + rounds
    for number, r in enumerate(shown):
        label = "warm-up" if r is warmup else str((number - (1 if warmup else 0)) // 2 + 1)
        steps = [fmt(r.milestones.get(name)) for name, _ in MILESTONES]
        rows.append(
            [
                label,
                r.kind,
                *steps,
                fmt(r.healthz_s),
                f"**{fmt(r.ready_s)}**",
                fmt(r.cpu_s),
                exit_label(r.exit_code),
                fmt(r.stop_s),
                "yes" if r.clean else "NO: " + "; ".join(r.problems),
            ]
        )
    summary = []
    for kind in ("fresh", "reuse"):
        chosen = [r for r in rounds if r.kind == kind]
        value = median([r.ready_s for r in chosen])
        if value is None:
            summary.append(f"- {kind}: no round reached /readyz 200")
            continue
        verdict = "met" if value < GOAL_SECONDS and all(r.clean for r in chosen) else "NOT met"
        goal = f" (goal < {GOAL_SECONDS:.0f} s, exits cleanly): **{verdict}**"
        summary.append(f"- {kind} data dir: median {value:.2f} s over {len(chosen)} rounds{goal}")
    command = " ".join([".venv/bin/python", "bench/make_run_startup.py", *sys.argv[1:]])
    return "\n".join(
        [
            f"### `make run` startup ({time.strftime('%Y-%m-%d %H:%M %Z')})",
            "",
            f"`{command}`: seconds from starting `make run` to the first HTTP 200 of /readyz (database, "
            "migrations and a ticking worker), then SIGINT to the process group. Every time column counts "
            "seconds from the start of `make run`; the milestones are when its output said so. CPU s: user + "
            "system CPU time of make and every process it started, from start to exit (less sensitive to "
            "other load than the wall-clock times). "
            f"CPU busy before the run (other processes): {busy:.0%}.",
            "",
            markdown_table(header, rows),
            "",
            *summary,
            "",
            facts_table(facts),
            "",
        ]
    )


def main() -> int:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--rounds", type=int, default=3, help="fresh starts, each followed by a reuse start")
    parser.add_argument("--no-warmup", action="store_true", help="skip the unmeasured first start")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for /readyz")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "make_run_startup.md")
    args = parser.parse_args()
    if shutil.which("make") is None:
        print("make is not installed", file=sys.stderr)
        return 2

    out_dir = args.out.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    sigint_reaches_children()
    facts = machine_facts()
    busy = background_cpu_busy()
    if busy > 0.15:
        print(f"warning: the CPUs are {busy:.0%} busy before the run; figures will be high", file=sys.stderr)
    rounds: list[Round] = []
    warmup: Round | None = None
    with tempfile.TemporaryDirectory(prefix="relia-make-run-") as tmp:
        if not args.no_warmup:
            print("warm-up (not counted): ", end="", flush=True)
            warmup = run_once("fresh", Path(tmp) / "warmup", out_dir / "make-run-warmup.log", args.timeout)
            status = f"clean: {warmup.clean} {warmup.problems or ''}"
            print(f"/readyz after {fmt(warmup.ready_s)} s, {status}", flush=True)
        for number in range(1, args.rounds + 1):
            data_dir = Path(tmp) / f"round-{number}"
            for kind in ("fresh", "reuse"):
                log_path = out_dir / f"make-run-{number}-{kind}.log"
                r = run_once(kind, data_dir, log_path, args.timeout)
                rounds.append(r)
                steps = ", ".join(f"{name} at {seconds:.2f}" for name, seconds in r.milestones.items())
                print(
                    f"round {number} {kind}: /readyz after {fmt(r.ready_s)} s ({steps}); "
                    f"CPU {fmt(r.cpu_s)} s, exit {exit_label(r.exit_code)}, stopped in {fmt(r.stop_s)} s, "
                    f"clean: {r.clean} {r.problems or ''}",
                    flush=True,
                )
    text = report(rounds, warmup, facts, busy)
    args.out.write_text(text)
    print()
    print(text)
    print(f"(written to {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out})")
    return 0 if all(r.clean and r.ready_s is not None for r in rounds) else 1


if __name__ == "__main__":
    sys.exit(main())
