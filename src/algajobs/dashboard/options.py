"""The dashboard's own settings, read from the environment like :class:`~algajobs.Settings`."""

from __future__ import annotations

from typing import Any

import pydantic
from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ..errors import ConfigurationError


class DashboardOptions(BaseSettings):
    """How the dashboard behaves; environment variable names in parentheses."""

    model_config = SettingsConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    token: pydantic.SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("token", "JOB_DASHBOARD_TOKEN")
    )
    """Operator token (``JOB_DASHBOARD_TOKEN``): unset, the dashboard is read-only."""
    tenant: str | None = Field(default=None, validation_alias=AliasChoices("tenant", "JOB_DASHBOARD_TENANT"))
    """Pin every page and action to this tenant (``JOB_DASHBOARD_TENANT``); ``?tenant=`` is then ignored."""
    temporal_ui_url: str = Field(
        default="http://localhost:8233",
        validation_alias=AliasChoices("temporal_ui_url", "JOB_DASHBOARD_TEMPORAL_UI_URL"),
    )
    """Base URL of the Temporal Web UI that workflow links point to (``JOB_DASHBOARD_TEMPORAL_UI_URL``)."""
    page_size: int = Field(default=50, ge=1, le=500, validation_alias=AliasChoices("page_size", "JOB_DASHBOARD_PAGE"))
    """Jobs per list page (``JOB_DASHBOARD_PAGE``)."""
    refresh_seconds: int = Field(
        default=5, ge=0, le=3600, validation_alias=AliasChoices("refresh_seconds", "JOB_DASHBOARD_REFRESH")
    )
    """How often the overview reloads its counts, in seconds; 0 turns it off (``JOB_DASHBOARD_REFRESH``)."""
    bulk_retry_limit: int = Field(
        default=1_000, ge=1, le=10_000, validation_alias=AliasChoices("bulk_retry_limit", "JOB_DASHBOARD_BULK_LIMIT")
    )
    """Most failed jobs one bulk retry requeues (``JOB_DASHBOARD_BULK_LIMIT``)."""

    @property
    def read_only(self) -> bool:
        """True without an operator token: no action buttons, every POST refused."""
        return self.token is None or not self.token.get_secret_value()

    @classmethod
    def load(cls, **overrides: Any) -> DashboardOptions:
        """Read the environment (plus ``overrides``); ConfigurationError on a bad value."""
        try:
            return cls(**overrides)
        except pydantic.ValidationError as exc:
            fields = ", ".join(str(e["loc"][0]) for e in exc.errors() if e["loc"])
            raise ConfigurationError(f"invalid dashboard configuration: {fields}") from None
