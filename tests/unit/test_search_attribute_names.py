"""Search attributes: the setting, the values set on a job, and a namespace's refusal classified as configuration."""

from __future__ import annotations

import uuid

import pytest
from temporalio.service import RPCError, RPCStatusCode

from algajobs import JobContext, JobRegistry, Settings, scheduling
from algajobs.temporal.ids import SEARCH_ATTRIBUTES, search_attribute_flags, search_attributes
from algajobs.temporal.security import (
    is_configuration_failure,
    search_attribute_advice,
    unregistered_search_attribute,
)

NAMES = ["AlgaTenant", "AlgaJobName", "AlgaJobId", "AlgaQueue"]


def _rpc(text: str, status: RPCStatusCode = RPCStatusCode.INVALID_ARGUMENT) -> RPCError:
    return RPCError(text, status, b"")


def test_the_setting_is_off_unless_the_variable_turns_it_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """Default off, so an existing namespace keeps working; TEMPORAL_SEARCH_ATTRIBUTES=true turns it on."""
    monkeypatch.delenv("TEMPORAL_SEARCH_ATTRIBUTES", raising=False)
    assert not Settings.load().temporal_search_attributes
    monkeypatch.setenv("TEMPORAL_SEARCH_ATTRIBUTES", "true")
    assert Settings.load().temporal_search_attributes


def test_a_job_carries_tenant_name_id_and_queue() -> None:
    """The four Keyword attributes hold the job's tenant, name, the given job id and its queue."""
    registry = JobRegistry()

    @registry.handler("invoice", queue="billing")
    async def invoice(ctx: JobContext, data: int) -> int:
        return data

    request = scheduling.prepare(registry, Settings.load(), "invoice", 1, tenant_id="acme")
    job_id = uuid.uuid4()
    attributes = search_attributes(request, job_id)
    assert [key.name for key in SEARCH_ATTRIBUTES] == NAMES
    assert [attributes.get(key) for key in SEARCH_ATTRIBUTES] == ["acme", "invoice", str(job_id), "billing"]


def test_the_dev_server_flags_register_each_as_a_keyword() -> None:
    """``temporal server start-dev`` gets one ``--search-attribute Name=Keyword`` per attribute."""
    assert search_attribute_flags() == [arg for name in NAMES for arg in ("--search-attribute", f"{name}=Keyword")]


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Namespace default has no mapping defined for search attribute AlgaJobId", "AlgaJobId"),  # SQL visibility
        ("search attribute AlgaTenant is not defined", "AlgaTenant"),  # Elasticsearch visibility
        ("invalid value for search attribute AlgaQueue of type Int: billing", "AlgaQueue"),  # registered as Int
    ],
)
def test_a_refused_attribute_is_a_configuration_failure(text: str, name: str) -> None:
    """INVALID_ARGUMENT about a search attribute: configuration, and the attribute is named."""
    assert unregistered_search_attribute(_rpc(text)) == name
    assert is_configuration_failure(_rpc(text))


@pytest.mark.parametrize(
    "exc",
    [
        _rpc("WorkflowId length exceeds limit."),
        _rpc("no mapping defined for search attribute AlgaTenant", RPCStatusCode.UNAVAILABLE),
        RuntimeError("no mapping defined for search attribute AlgaTenant"),
    ],
)
def test_other_refusals_do_not_name_an_attribute(exc: Exception) -> None:
    """Another INVALID_ARGUMENT, or the words without that status, are no search-attribute refusal."""
    assert unregistered_search_attribute(exc) is None


def test_the_advice_names_the_attribute_and_the_commands() -> None:
    """The message names the missing attribute, the namespace, the CLI commands and the way out."""
    advice = search_attribute_advice("AlgaJobId", "payments")
    assert "'AlgaJobId'" in advice
    assert "temporal operator search-attribute create --namespace payments" in advice
    assert all(f"--name {name} --type Keyword" in advice for name in NAMES)
    assert "tcld namespace search-attributes add" in advice
    assert "TEMPORAL_SEARCH_ATTRIBUTES=false" in advice
