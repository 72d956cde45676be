"""JobRegistry: registration, payload validation and handler invocation."""

from typing import Any

import pydantic
import pytest

from algajobs import JobContext, JobRegistry, PayloadValidationError, UnknownJobError, ValidationError


class Invoice(pydantic.BaseModel):
    billing_cycle_id: str


def test_payload_is_validated_against_the_handler_model() -> None:
    """The second parameter's annotation is the payload model."""
    registry = JobRegistry()

    @registry.handler("invoice")
    async def invoice(ctx: JobContext, data: Invoice) -> None: ...

    definition = registry.get("invoice")
    assert definition.is_async
    assert definition.validate_payload({"billing_cycle_id": "c1"}) == {"billing_cycle_id": "c1"}
    assert definition.validate_payload(Invoice(billing_cycle_id="c2")) == {"billing_cycle_id": "c2"}
    with pytest.raises(PayloadValidationError):
        definition.validate_payload({"wrong": 1})


def test_plain_functions_are_registered_as_sync() -> None:
    """A plain def handler is marked to run in a thread."""
    registry = JobRegistry()

    @registry.handler("plain")
    def plain(ctx: JobContext, data: Any) -> None: ...

    assert not registry.get("plain").is_async


def test_unknown_and_duplicate_names_are_errors() -> None:
    """Looking up an unregistered name or registering twice raises."""
    registry = JobRegistry()

    @registry.handler("once")
    async def once(ctx: JobContext, data: Any) -> None: ...

    with pytest.raises(UnknownJobError):
        registry.get("missing")
    with pytest.raises(ValidationError):
        registry.handler("once")(once)
    with pytest.raises(ValidationError):
        registry.handler("bad name!")


def test_handler_must_take_ctx_and_data() -> None:
    """A handler with the wrong arity is refused at registration."""
    registry = JobRegistry()
    with pytest.raises(ValidationError):
        registry.handler("x")(lambda ctx: None)


def test_only_the_payload_annotation_must_resolve() -> None:
    """An unresolvable ctx hint (a local import, say) does not break registration."""
    registry = JobRegistry()

    async def handler(ctx: "LocallyImportedContext", data: "Invoice") -> None: ...  # type: ignore[name-defined]  # noqa: F821

    registry.handler("local")(handler)
    assert registry.get("local").payload_type is Invoice


def test_unresolvable_payload_annotation_is_a_clear_error() -> None:
    """A payload type that cannot be found is reported at registration."""
    registry = JobRegistry()

    async def handler(ctx: JobContext, data: "Missing") -> None: ...  # type: ignore[name-defined]  # noqa: F821

    with pytest.raises(ValidationError, match="Missing"):
        registry.handler("missing")(handler)


def test_a_payload_model_with_aliases_round_trips() -> None:
    """What validation stores is what the handler's model reads back, field aliases included."""

    class Aliased(pydantic.BaseModel):
        step_ms: int = pydantic.Field(alias="stepMs")

    registry = JobRegistry()

    @registry.handler("aliased")
    async def aliased(ctx: JobContext, data: Aliased) -> None:
        return None

    definition = registry.get("aliased")
    stored = definition.validate_payload({"stepMs": 5})
    assert definition.parse_payload(stored) == Aliased(stepMs=5)
    assert definition.parse_payload(definition.validate_payload(Aliased(stepMs=7))).step_ms == 7
