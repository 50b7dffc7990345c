"""Process settings, read from RELIA_* environment variables (12-factor)."""

from __future__ import annotations

import secrets
from functools import cached_property
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RELIA_", extra="ignore")

    data_dir: Path = Field(default=Path(".relia"), description="Where the embedded SQLite files live.")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default sqlite under data_dir. Production: postgresql+psycopg://...",
    )
    queue_url: str | None = Field(
        default=None,
        description="huey backend: sqlite:///path (default, its own file), postgresql://... or redis://...",
    )
    secret_key: str | None = Field(
        default=None,
        description="Signs sessions and derives encryption keys. Default: generated once into data_dir.",
    )
    base_url: str = "http://127.0.0.1:8000"
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "info"
    log_json: bool = True

    max_request_bytes: int = Field(default=1_048_576, ge=1024, description="Largest accepted request body.")
    session_max_age_seconds: int = 12 * 3600
    cookie_secure: bool = False

    demo_traffic: bool = Field(
        default=False, description="Feed the demo organisation's SLOs a minute of synthetic traffic every minute."
    )
    tick_interval_seconds: float = Field(default=5.0, gt=0)
    worker_threads: int = Field(default=2, ge=1)
    worker_stale_after_seconds: int = Field(default=120, ge=1)

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'relia.db'}"

    @property
    def effective_queue_url(self) -> str:
        return self.queue_url or f"sqlite:///{self.data_dir / 'queue.db'}"

    @cached_property
    def effective_secret_key(self) -> str:
        """The configured secret, or one generated on first use and kept in data_dir."""
        if self.secret_key:
            return self.secret_key
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key_file = self.data_dir / "secret_key"
        if not key_file.exists():
            key_file.write_text(secrets.token_urlsafe(48))
            key_file.chmod(0o600)
        return key_file.read_text().strip()

    def ensure_data_dir(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)


def load_settings(**overrides: object) -> Settings:
    return Settings(**overrides)  # type: ignore[arg-type]
