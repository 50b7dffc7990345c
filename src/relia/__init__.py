"""Relia: SLOs, error budgets, release gates, on-call and paging in one service."""

__version__ = "0.1.0"
