"""The blue-green nginx switch under a steady client load: failed requests during the switch (goal 0) and the
time from "switch" to all traffic on the new environment.

Two small HTTP backends on 127.0.0.1 (blue answers v1, green v2) sit behind a real nginx master started in a
temporary directory (the test harness of ``tests/deploys/nginx_support.py``). Client threads send GET / back to
back through nginx for the whole run, each request on a new connection (``new-connection``) or on one kept-alive
connection per thread (``keepalive``). The switch is Relia's ``nginx`` adapter exactly as a deployment calls it:
rewrite the upstream include file atomically, ``nginx -t``, ``nginx -s reload``. It flips blue -> green -> blue
``--switches`` times, ``--gap`` seconds apart.

Per switch, with t0 the moment the adapter is called:

- adapter: how long the adapter call took (write, fsync, rename, configuration test, reload signal);
- all traffic on new: from t0 until the last request that *started* after t0 and was still answered by the old
  environment (0 when none was); after that moment every new request reaches the new environment;
- failed: requests that got no answer or a status other than 200, over the whole run (not only near switches).

With ``keepalive``, a request sent on a connection nginx closed while it sat idle (an old worker ends its idle
keep-alive connections when it retires) fails before any byte of an answer; the client reconnects and sends it
again, as HTTP clients do for requests that are safe to repeat. Those are counted apart as "idle reconnects".

Run: ``.venv/bin/python bench/nginx_switch.py`` (defaults: 20 switches, 4 client threads, 2 nginx workers, both
modes). Prints a markdown table and writes it to ``bench/results/nginx_switch.md``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from _common import RESULTS_DIR, ROOT, background_cpu_busy, facts_table, machine_facts, markdown_table

from relia.deploys import adapters
from relia.deploys.schemas import NginxAdapter

# The real-parts harness of the tests: backends, a private nginx master, the client loop.
sys.path.insert(0, str(ROOT))
from tests.deploys.nginx_support import (
    NGINX,
    NGINX_MISSING,
    UPSTREAM_NAME,
    Answer,
    ClientLoop,
    blue_green_stack,
)

VERSIONS = {"blue": "v1", "green": "v2"}


@dataclass
class SwitchTiming:
    adapter_ms: float
    all_new_ms: float


@dataclass
class ModeResult:
    mode: str
    switches: list[SwitchTiming]
    requests: int
    seconds: float
    failed: int
    idle_reconnects: int
    failures: list[str]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))]


def all_new_after(answers: list[Answer], t0: float, old: str) -> float:
    """Seconds from t0 to the start of the last request that began after t0 and still reached ``old``."""
    late = [answer.started for answer in answers if answer.started >= t0 and answer.body == old]
    return max(late) - t0 if late else 0.0


def run_mode(mode: str, *, switches: int, clients: int, workers: int, gap: float) -> ModeResult:
    with (
        tempfile.TemporaryDirectory(prefix="relia-bench-nginx-") as directory,
        blue_green_stack(Path(directory), workers=workers) as (blue, green, nginx),
    ):
        spec = NginxAdapter.model_validate(
            {
                "type": "nginx",
                "upstreamFile": str(nginx.upstream_file),
                "upstreamName": UPSTREAM_NAME,
                "testCommand": nginx.test_command,
                "reloadCommand": nginx.reload_command,
            }
        )
        upstreams = {"blue": blue.address, "green": green.address}
        client = ClientLoop(nginx.port, threads=clients, keepalive=mode == "keepalive").start()
        started = time.monotonic()
        timings = []
        try:
            client.wait_for("v1")
            live = "blue"
            for index in range(switches):
                new = "green" if live == "blue" else "blue"
                context = adapters.ActionContext(
                    action="switch",
                    deployment_id=index + 1,
                    service="bench",
                    target="bench",
                    version=VERSIONS[new],
                    previous_version=VERSIONS[live],
                    environment=new,
                    live=new,
                    new_environment=new,
                    old_environment=live,
                    upstreams=upstreams,
                )
                t0 = time.monotonic()
                adapters.perform(spec, context)
                adapter_seconds = time.monotonic() - t0
                client.wait_for(VERSIONS[new], count=clients * 20, timeout=30)
                time.sleep(gap)  # steady state on the new side before measuring and switching again
                measured = all_new_after(client.snapshot(), t0, VERSIONS[live])
                timings.append(SwitchTiming(adapter_seconds * 1000, measured * 1000))
                live = new
        finally:
            client.stop()
        seconds = time.monotonic() - started
        failures = client.failures()
        return ModeResult(
            mode=mode,
            switches=timings,
            requests=len(client.snapshot()),
            seconds=seconds,
            failed=len(failures),
            idle_reconnects=client.idle_reconnects,
            failures=[f"{answer.error}" for answer in failures[:10]],
        )


def nginx_version() -> str:
    assert NGINX is not None
    done = subprocess.run([NGINX, "-v"], capture_output=True, text=True)
    return (done.stderr or done.stdout).strip().removeprefix("nginx version: ")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--switches", type=int, default=20, help="switches per mode (alternating)")
    parser.add_argument("--clients", type=int, default=4, help="client threads sending back to back")
    parser.add_argument("--workers", type=int, default=2, help="nginx worker processes")
    parser.add_argument("--gap", type=float, default=1.0, help="seconds of steady traffic after each switch")
    parser.add_argument("--modes", nargs="+", default=["new-connection", "keepalive"],
                        choices=["new-connection", "keepalive"])  # fmt: skip
    args = parser.parse_args()
    if NGINX is None:
        print(NGINX_MISSING, file=sys.stderr)
        return 2
    busy = background_cpu_busy()
    facts = machine_facts()
    facts["nginx"] = nginx_version()
    facts["CPU busy before the run"] = f"{busy * 100:.0f} %"
    results = [
        run_mode(mode, switches=args.switches, clients=args.clients, workers=args.workers, gap=args.gap)
        for mode in args.modes
    ]
    header = [
        "Client connections",
        "Switches",
        "Requests (req/s)",
        "Failed requests",
        "Idle reconnects",
        "Adapter p50 / max (ms)",
        "All traffic on new p50 / p90 / max (ms)",
    ]
    rows = []
    for result in results:
        adapter_ms = [timing.adapter_ms for timing in result.switches]
        all_new_ms = [timing.all_new_ms for timing in result.switches]
        rows.append(
            [
                result.mode,
                str(len(result.switches)),
                f"{result.requests:,} ({result.requests / result.seconds:,.0f})",
                str(result.failed),
                str(result.idle_reconnects),
                f"{statistics.median(adapter_ms):.0f} / {max(adapter_ms):.0f}",
                f"{statistics.median(all_new_ms):.0f} / {percentile(all_new_ms, 0.9):.0f} / {max(all_new_ms):.0f}",
            ]
        )
    command = " ".join(["bench/nginx_switch.py", *sys.argv[1:]]) or "bench/nginx_switch.py"
    report = "\n\n".join(
        [
            f"`{command}`: {args.switches} switches per mode, {args.clients} client threads, "
            f"{args.workers} nginx workers, {args.gap:g} s between switches.",
            markdown_table(header, rows),
            facts_table(facts),
        ]
    )
    for result in results:
        if result.failures:
            report += f"\n\nFailures ({result.mode}, first {len(result.failures)}):\n" + "\n".join(
                f"- {failure}" for failure in result.failures
            )
    print(report)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "nginx_switch.md").write_text(report + "\n", encoding="utf-8")
    return 0 if all(result.failed == 0 for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
