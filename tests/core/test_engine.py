"""The engine tick runs every registered step in order; a failing step does not stop the others."""

from __future__ import annotations

from relia.core import engine
from relia.core.clock import SimulatedClock


def test_steps_run_in_order_and_failures_are_contained(monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(engine, "_steps", {})
    engine.tick_step("third", order=30)(lambda db, clock: calls.append("third"))
    engine.tick_step("first", order=10)(lambda db, clock: calls.append("first"))

    def broken(db, clock):
        calls.append("broken")
        raise RuntimeError("step bug")

    engine.tick_step("broken", order=20)(broken)
    report = engine.run_tick(db=None, clock=SimulatedClock())  # type: ignore[arg-type]
    assert calls == ["first", "broken", "third"]
    assert report.errors == {"broken": "RuntimeError: step bug"}
    assert set(report.durations) == {"first", "broken", "third"}


def test_builtin_steps_are_registered():
    from relia import domains

    domains.load_jobs()
    assert engine.step_names()[0] == "timers"
    assert "outbox" in engine.step_names()
