"""The worker: its engine loop ticks and keeps a heartbeat; `relia worker` and `relia up` start and stop
cleanly as real processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx2
import pytest
from sqlalchemy import select

from relia.core import engine
from relia.core.models import WorkerHeartbeat
from relia.worker.main import EngineLoop


def test_tick_once_records_a_heartbeat(db, clock):
    loop = EngineLoop(db=db, clock=clock, interval=5.0)
    report = loop.tick_once(scheduled=time.monotonic())
    assert report.errors == {}
    with db.reader() as session:
        heartbeat = session.scalars(select(WorkerHeartbeat)).one()
    assert heartbeat.worker_id == loop.worker_id
    assert heartbeat.last_tick_at == clock.now()
    assert heartbeat.last_tick_lag_seconds is not None


def test_wake_runs_a_tick_now_and_stop_ends_the_loop(db, clock, monkeypatch):
    ticks = threading.Semaphore(0)
    original = engine.run_tick

    def counting_tick(database, tick_clock):
        report = original(database, tick_clock)
        ticks.release()
        return report

    monkeypatch.setattr(engine, "run_tick", counting_tick)
    loop = EngineLoop(db=db, clock=clock, interval=3600.0)
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    assert ticks.acquire(timeout=10), "the first tick runs at once"
    loop.wake()
    assert ticks.acquire(timeout=10), "wake() runs a tick without waiting an hour"
    loop.stop()
    thread.join(timeout=10)
    assert not thread.is_alive()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _environment(tmp_path: Path, port: int) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("RELIA_")}
    env.update(
        RELIA_DATA_DIR=str(tmp_path / "data"),
        RELIA_PORT=str(port),
        RELIA_TICK_INTERVAL_SECONDS="0.5",
        RELIA_SECRET_KEY="process-test-secret",
        RELIA_LOG_LEVEL="warning",
    )
    return env


def _relia(*args: str) -> list[str]:
    return [sys.executable, "-m", "relia", *args]


def _wait_ready(port: int, process: subprocess.Popen, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        assert process.poll() is None, f"exited early with {process.returncode}"
        try:
            response = httpx2.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
            last = response.json()
            if response.status_code == 200:
                return last
        except httpx2.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"not ready in {timeout}s: {last}")


@pytest.mark.slow
def test_relia_up_serves_ticks_survives_a_killed_worker_and_stops_on_ctrl_c(tmp_path):
    port = _free_port()
    env = _environment(tmp_path, port)
    subprocess.run(_relia("db", "upgrade"), env=env, check=True, capture_output=True)
    up = subprocess.Popen(
        _relia("up"), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        ready = _wait_ready(port, up)
        assert ready["checks"]["worker"]["ok"] is True
        workers = subprocess.run(["pgrep", "-f", "-P", str(up.pid), "relia worker"], capture_output=True, text=True)
        worker_pids = [int(pid) for pid in workers.stdout.split()]
        assert len(worker_pids) == 1
        os.kill(worker_pids[0], signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            again = subprocess.run(["pgrep", "-f", "-P", str(up.pid), "relia worker"], capture_output=True, text=True)
            if again.stdout.split() and int(again.stdout.split()[0]) != worker_pids[0]:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the supervisor did not restart the killed worker")
        up.send_signal(signal.SIGINT)
        output, _ = up.communicate(timeout=30)
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
    assert up.returncode == 0, output
    assert b"restarting" in output
    assert b"Relia stopped." in output
    children = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True)
    assert children.stdout.strip() == "", "no child process outlives relia up"


@pytest.mark.slow
def test_relia_worker_stops_gracefully_on_sigterm(tmp_path):
    env = {**_environment(tmp_path, _free_port()), "RELIA_LOG_LEVEL": "info"}
    subprocess.run(_relia("db", "upgrade"), env=env, check=True, capture_output=True)
    worker = subprocess.Popen(_relia("worker"), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        from relia.core.db import Database

        db = Database(f"sqlite:///{tmp_path / 'data' / 'relia.db'}")
        try:
            while time.monotonic() < deadline:
                with db.reader() as session:
                    if session.scalars(select(WorkerHeartbeat)).first() is not None:
                        break
                time.sleep(0.2)
            else:
                raise AssertionError("the worker never ticked")
        finally:
            db.dispose()
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == 0, output
    assert b"worker.stopped" in output
