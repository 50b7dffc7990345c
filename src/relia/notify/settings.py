"""Notification settings, read from RELIA_* environment variables like the process settings in
``relia.core.settings`` (kept here because only this domain reads them).

| variable | default | |
| --- | --- | --- |
| RELIA_SMTP_HOST / RELIA_SMTP_PORT | localhost / 25 | the SMTP server email goes through |
| RELIA_SMTP_SECURITY | starttls | none, starttls or ssl |
| RELIA_SMTP_USERNAME / RELIA_SMTP_PASSWORD | - | SMTP login, if the server needs one |
| RELIA_SMTP_FROM | relia@localhost | the sender address |
| RELIA_NOTIFY_THROTTLE_LIMIT / _WINDOW_SECONDS | 10 / 60 | at most this many messages per destination per window |
| RELIA_NOTIFY_BUNDLE_MAX | 50 | pages listed in one message at most |
| RELIA_WATCHDOG_URL | - | pinged (GET) after every healthy engine tick: a dead man's switch |
| RELIA_WATCHDOG_NOTIFY | - | apprise URLs (comma-separated) told directly when the pipeline stalls |
| RELIA_WATCHDOG_STALL_SECONDS | 120 | a due timer or outbox message this late means the pipeline stalled |
| RELIA_WATCHDOG_REPEAT_SECONDS | 1800 | while stalled, say so again this often |
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from relia.notify.rules import SmtpConfig


class NotifySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RELIA_", extra="ignore")

    base_url: str = "http://127.0.0.1:8000"

    smtp_host: str = "localhost"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_security: Literal["none", "starttls", "ssl"] = "starttls"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "relia@localhost"

    notify_throttle_limit: int = Field(default=10, ge=1, le=10_000)
    notify_throttle_window_seconds: int = Field(default=60, ge=1, le=86_400)
    notify_bundle_max: int = Field(default=50, ge=1, le=1000)

    watchdog_url: str | None = None
    watchdog_notify: str | None = None
    watchdog_stall_seconds: int = Field(default=120, ge=10)
    watchdog_repeat_seconds: int = Field(default=1800, ge=60)

    @property
    def smtp(self) -> SmtpConfig:
        return SmtpConfig(
            host=self.smtp_host,
            port=self.smtp_port,
            security=self.smtp_security,
            sender=self.smtp_from,
            username=self.smtp_username,
            password=self.smtp_password.get_secret_value() if self.smtp_password else None,
        )

    @property
    def watchdog_targets(self) -> list[str]:
        return [url.strip() for url in (self.watchdog_notify or "").split(",") if url.strip()]


@lru_cache(maxsize=1)
def notify_settings() -> NotifySettings:
    """Read once per process; tests that change the environment call ``notify_settings.cache_clear()``."""
    return NotifySettings()
