"""Console settings: who may read and who may write, read apart from the core settings.

``TALLY_CONSOLE_TOKEN`` signs a person in (a session cookie) and is what API clients send as
``Authorization: Bearer <token>``; every write needs it. Reading without it is allowed only
when ``TALLY_CONSOLE_READ_ONLY_OPEN=true`` says so explicitly. With neither set the console
refuses to start: a console nobody may open is a mistake, not a default.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings

from worker.accounts import config_error
from worker.config import Settings
from worker.errors import ConfigError

MIN_TOKEN_LENGTH = 16  # a token short enough to guess is refused at startup


class ConsoleSettings(BaseSettings):
    """Access, bind address and session lifetime of ``tally console``."""

    model_config = Settings.model_config  # the same sources and rules as the core settings

    tally_console_token: SecretStr | None = None
    tally_console_read_only_open: bool = False
    tally_console_host: str = "127.0.0.1"
    tally_console_port: int = Field(default=8079, ge=0, le=65535)
    tally_console_session_hours: int = Field(default=12, ge=1, le=24 * 30)

    @field_validator("tally_console_token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            token = value.get_secret_value()
            if len(token) < MIN_TOKEN_LENGTH or any(c.isspace() for c in token):
                raise ValueError(
                    f"must be at least {MIN_TOKEN_LENGTH} characters without spaces "
                    "(e.g. `openssl rand -hex 32`)"
                )
        return value

    @property
    def token(self) -> str | None:
        return self.tally_console_token.get_secret_value() if self.tally_console_token else None

    @property
    def enabled(self) -> bool:
        """Someone may open it: a token to sign in with, or reading left open on purpose."""
        return self.token is not None or self.tally_console_read_only_open


def load_console_settings(**overrides: Any) -> ConsoleSettings:
    """The console's settings (``overrides`` by lower-case name win), or a one-line
    ``ConfigError`` naming the variable."""
    try:
        return ConsoleSettings(**overrides)
    except ValidationError as exc:
        raise config_error(exc) from None


def require_enabled(settings: ConsoleSettings) -> ConsoleSettings:
    if not settings.enabled:
        raise ConfigError(
            "invalid setting TALLY_CONSOLE_TOKEN: set it to sign in to the console, or set "
            "TALLY_CONSOLE_READ_ONLY_OPEN=true to let anyone who can reach it read (not write)"
        )
    return settings
