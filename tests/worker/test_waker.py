"""The API wakes the worker through the queue (``relia.tick_now``) so freshly due work does not wait for the
next scheduled tick; the wake-ups are debounced, and the worker's registration of the task is what runs."""

from __future__ import annotations

from pathlib import Path

from relia.core.settings import Settings
from relia.worker.main import build_huey
from relia.worker.queue import WorkerWaker, make_huey


class LoopSpy:
    def __init__(self) -> None:
        self.woken = 0

    def wake(self) -> None:
        self.woken += 1


def queue_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, queue_url=f"sqlite:///{tmp_path}/queue.db")


def test_a_wake_up_from_the_api_makes_the_worker_loop_tick(tmp_path):
    settings = queue_settings(tmp_path)
    waker = WorkerWaker(make_huey(settings))
    assert waker.due()
    waker.send()

    loop = LoopSpy()
    worker_queue = build_huey(settings, loop)  # type: ignore[arg-type]
    assert worker_queue.pending_count() == 1
    worker_queue.execute(worker_queue.dequeue())
    assert loop.woken == 1
    assert worker_queue.pending_count() == 0


def test_wake_ups_are_debounced(tmp_path, monkeypatch):
    waker = WorkerWaker(make_huey(queue_settings(tmp_path)), min_interval=0.25)
    instants = iter([100.0, 100.1, 100.2, 100.3, 100.6])
    monkeypatch.setattr("relia.worker.queue.time.monotonic", lambda: next(instants))
    assert [waker.due() for _ in range(5)] == [True, False, False, True, True]


def test_a_broken_queue_never_fails_the_caller(tmp_path, monkeypatch):
    waker = WorkerWaker(make_huey(queue_settings(tmp_path)))

    def broken() -> None:
        raise OSError("disk full")

    monkeypatch.setattr(waker, "_enqueue", broken)
    waker.send()  # logged, not raised
