"""The public surface: one entry point with a sorted, exact __all__."""

import inspect

import algajobs


def test_all_is_sorted_and_complete() -> None:
    """__all__ lists exactly the public names, sorted."""
    public = {name for name in dir(algajobs) if not name.startswith("_")}
    modules = {name for name in public if inspect.ismodule(getattr(algajobs, name))}
    assert algajobs.__all__ == sorted(algajobs.__all__)
    assert set(algajobs.__all__) == public - modules


def test_every_public_name_is_documented() -> None:
    """Each exported class and function has a docstring."""
    for name in algajobs.__all__:
        assert inspect.getdoc(getattr(algajobs, name)), name


def test_fixed_names_exist() -> None:
    """The names DESIGN.md fixes are importable."""
    for name in ("JobRegistry", "JobContext", "RetryPolicy", "JobStatus", "create_runner", "Settings"):
        assert hasattr(algajobs, name)


def test_every_error_derives_from_the_base() -> None:
    """One except clause catches every algajobs error."""
    errors = [getattr(algajobs, n) for n in algajobs.__all__ if n.endswith("Error")]
    assert all(issubclass(e, algajobs.AlgaJobsError) for e in errors)


def test_every_runner_implements_the_runner_protocol() -> None:
    """The three runners all satisfy the one JobRunner seam."""
    settings = algajobs.Settings.load()
    registry = algajobs.JobRegistry()
    for runner in (
        algajobs.PostgresRunner(settings, registry),
        algajobs.TemporalRunner(settings, registry),
        algajobs.FailoverRunner(settings, registry),
    ):
        assert isinstance(runner, algajobs.JobRunner), type(runner).__name__


def test_create_runner_follows_the_settings() -> None:
    """temporal+fallback → FailoverRunner; fallback off → TemporalRunner; postgres → PostgresRunner."""
    load = algajobs.Settings.load
    assert type(algajobs.create_runner(load())) is algajobs.FailoverRunner
    assert type(algajobs.create_runner(load(fallback_to_postgres=False))) is algajobs.TemporalRunner
    assert type(algajobs.create_runner(load(runner_type="pgboss"))) is algajobs.PostgresRunner
