"""Where the copied conformance data lives (see tests/fixtures/conformance/COPIED.md)."""

from pathlib import Path

CONFORMANCE = Path(__file__).resolve().parent / "fixtures" / "conformance"
