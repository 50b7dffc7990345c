"""Helpers shared by the benchmarks: free ports, HTTP polling, machine facts, markdown tables."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
RESULTS_DIR = ROOT / "bench" / "results"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http(
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    body: object | None = None,
    timeout: float = 5.0,
) -> tuple[int, bytes]:
    """(status, body); (0, b"") when nothing answers."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (OSError, urllib.error.URLError):
        return 0, b""


def wait_for_status(url: str, status: int = 200, *, timeout: float = 60.0, interval: float = 0.05) -> float:
    """Poll ``url`` until it answers ``status``; returns the monotonic time it did. Raises on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got, _ = http("GET", url, timeout=2.0)
        if got == status:
            return time.monotonic()
        time.sleep(interval)
    raise TimeoutError(f"{url} did not answer {status} within {timeout:.0f} s")


def sigint_reaches_children() -> None:
    """A shell starts background jobs with SIGINT ignored, and children inherit that; undo it so the
    processes started here take SIGINT as they would from Ctrl-C in a terminal."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def background_cpu_busy(seconds: float = 1.0) -> float:
    """Share (0..1) of all CPUs busy over ``seconds`` before a run: other load skews the figures."""

    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = fields[3] + fields[4]
        return idle, sum(fields)

    idle0, total0 = sample()
    time.sleep(seconds)
    idle1, total1 = sample()
    return 1.0 - (idle1 - idle0) / max(1, total1 - total0)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _ram() -> str:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return "unknown"


def _os() -> str:
    pretty = platform.platform()
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                pretty = line.split("=", 1)[1].strip('"')
    return f"{pretty}, Linux {platform.release()}"


def _git_commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "src"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}{' (src/ modified)' if dirty else ''}"


def machine_facts(*, postgres_version: str | None = None, wrk: bool = False) -> dict[str, str]:
    facts = {
        "CPU": _cpu_model(),
        "Cores": str(os.cpu_count()),
        "RAM": _ram(),
        "OS": _os(),
        "Python": platform.python_version(),
        "uvicorn": _version("uvicorn"),
        "FastAPI": _version("fastapi"),
        "SQLAlchemy": _version("sqlalchemy"),
        "psycopg": _version("psycopg"),
        "SQLite": sqlite3.sqlite_version,
    }
    if postgres_version is not None:
        facts["PostgreSQL"] = postgres_version
    if wrk:
        facts["wrk"] = wrk_version()
    facts["Relia commit"] = _git_commit()
    facts["Load average at start"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return facts


def wrk_version() -> str:
    path = shutil.which("wrk")
    if path is None:
        return "not installed"
    done = subprocess.run([path, "-v"], capture_output=True, text=True)
    first = (done.stdout or done.stderr).splitlines()
    return first[0].split(" Copyright")[0] if first else "unknown"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def facts_table(facts: dict[str, str]) -> str:
    return markdown_table(["Machine", ""], [[key, value] for key, value in facts.items()])
