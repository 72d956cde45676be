"""Settings: environment names, aliases and errors that name the variable."""

import pytest

from algajobs import ConfigurationError, RunnerType, Settings


def test_defaults_follow_the_design() -> None:
    """Temporal first, fallback on, task queue alga-jobs."""
    settings = Settings.load()
    assert settings.runner_type is RunnerType.TEMPORAL
    assert settings.fallback_to_postgres
    assert settings.temporal_task_queue == "alga-jobs"


def test_environment_names_and_pgboss_alias(monkeypatch: pytest.MonkeyPatch) -> None:
    """JOB_RUNNER_TYPE=pgboss means postgres; the fallback flag has two names."""
    monkeypatch.setenv("JOB_RUNNER_TYPE", "pgboss")
    monkeypatch.setenv("JOB_RUNNER_FALLBACK_TO_POSTGRES", "false")
    monkeypatch.setenv("TEMPORAL_JOB_TASK_QUEUE", "other")
    settings = Settings.load()
    assert settings.runner_type is RunnerType.POSTGRES
    assert not settings.fallback_to_postgres
    assert settings.temporal_task_queue == "other"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("JOB_RUNNER_TYPE", "kafka"),
        ("JOB_WORKER_CONCURRENCY", "0"),
        ("JOB_SCHEMA", "Robert'); DROP"),
        ("JOB_SCHEMA", "s" * 50),  # 'algajobs_done_' + 50 characters is past PostgreSQL's 63 for a channel
        ("DATABASE_URL", "mysql://x"),
        ("JOB_LEASE_SECONDS", "0"),
        ("JOB_POLL_INTERVAL", "soon"),
    ],
)
def test_bad_values_name_the_variable(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    """The error message carries the environment variable's name."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=variable):
        Settings.load()


def test_durations_read_as_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Duration variables take plain seconds."""
    monkeypatch.setenv("JOB_POLL_INTERVAL", "0.5")
    monkeypatch.setenv("JOB_LEASE_SECONDS", "12")
    settings = Settings.load()
    assert settings.poll_interval.total_seconds() == 0.5
    assert settings.lease_duration.total_seconds() == 12
