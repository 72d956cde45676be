"""Handler registration: job names mapped to typed handlers and their policies."""

from __future__ import annotations

import asyncio
import functools
import inspect
import re
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pydantic
import pydantic_core

from .context import JobContext
from .errors import PayloadValidationError, UnknownJobError, ValidationError
from .retry import RetryPolicy
from .validation import DEFAULT_QUEUE, queue_name

Handler = Callable[[JobContext, Any], Any]
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
_DEFAULT_TIMEOUT = timedelta(minutes=30)
# Serialize as pydantic's JSON mode does, except that NaN and ±Infinity stay floats.
_KEEP_NON_FINITE = pydantic_core.CoreConfig(ser_json_inf_nan="constants")


@dataclass(frozen=True)
class JobDefinition:
    """One registered handler with its payload type, retry policy and timeout."""

    name: str
    handler: Handler
    payload_type: Any
    retry: RetryPolicy
    timeout: timedelta
    is_async: bool
    _adapter: pydantic.TypeAdapter[Any] = field(repr=False, compare=False)
    queue: str = DEFAULT_QUEUE
    """The named queue its jobs wait in (a Temporal task queue; a column on PostgreSQL)."""
    concurrency: int | None = None
    """At most this many jobs of this type run at once in one worker process (None: no cap of its own)."""

    def validate_payload(self, data: Any) -> Any:
        """Return ``data`` as JSON-ready Python values, or raise PayloadValidationError.

        NaN and ±Infinity stay floats here (pydantic would quietly write
        null), so that ``validation.encode_payload`` refuses them.
        """
        try:
            parsed = self._adapter.validate_python(_plain(data))
            # By alias: the stored payload must validate again when the handler reads it.
            return self._serializer.to_python(parsed, mode="json", by_alias=True)
        except pydantic.ValidationError as exc:
            raise PayloadValidationError(f"payload for {self.name!r} is invalid: {exc}") from None
        except (ValueError, TypeError, RecursionError) as exc:  # a cycle, a non-JSON value, bytes not UTF-8
            raise PayloadValidationError(f"payload for {self.name!r} cannot be serialized to JSON: {exc}") from None

    def validate_payloads(self, payloads: list[Any]) -> list[Any]:
        """``validate_payload`` for a whole batch, in one pass; an error names the payload's index."""
        adapter, serializer = self._list_codec
        try:
            parsed = adapter.validate_python([_plain(p) for p in payloads])
            return serializer.to_python(parsed, mode="json", by_alias=True)  # type: ignore[no-any-return]
        except pydantic.ValidationError as exc:
            # The first bad payload, with the error a single call gives (not every error of the batch).
            loc = exc.errors(include_url=False)[0]["loc"]
            at = loc[0] if loc and isinstance(loc[0], int) else 0
            try:
                self.validate_payload(payloads[at])
            except PayloadValidationError as single:
                raise PayloadValidationError(f"{single} (payload {at} of the batch)") from None
            raise PayloadValidationError(f"payload for {self.name!r} is invalid: {exc}") from None
        except (ValueError, TypeError, RecursionError) as exc:
            raise PayloadValidationError(f"payload for {self.name!r} cannot be serialized to JSON: {exc}") from None

    @functools.cached_property
    def _list_codec(self) -> tuple[pydantic.TypeAdapter[list[Any]], pydantic_core.SchemaSerializer]:
        """A list of payloads' validator and serializer (built on the first batch)."""
        adapter: pydantic.TypeAdapter[list[Any]] = pydantic.TypeAdapter(list[self.payload_type])  # type: ignore[name-defined]
        return adapter, pydantic_core.SchemaSerializer(adapter.core_schema, _KEEP_NON_FINITE)

    @functools.cached_property
    def _serializer(self) -> pydantic_core.SchemaSerializer:
        """The payload type's serializer, but keeping non-finite floats (built once, on first use)."""
        return pydantic_core.SchemaSerializer(self._adapter.core_schema, _KEEP_NON_FINITE)

    def parse_payload(self, data: Any) -> Any:
        """Turn stored JSON values back into the handler's payload type."""
        return self._adapter.validate_python(data)

    async def invoke(self, ctx: JobContext, data: Any) -> Any:
        """Run the handler; plain functions run in a thread so the loop stays free."""
        payload = self.parse_payload(data)
        if self.is_async:
            result = await self.handler(ctx, payload)
        else:
            result = await asyncio.to_thread(self.handler, ctx, payload)
        if isinstance(result, pydantic.BaseModel):
            return result.model_dump(mode="json")
        return result


class JobRegistry:
    """Maps job names to handlers; the one place both engines look jobs up."""

    def __init__(self) -> None:
        self._jobs: dict[str, JobDefinition] = {}
        self._queue_limits: dict[str, int] = {}

    def handler(
        self,
        name: str,
        *,
        retry: RetryPolicy | None = None,
        timeout: timedelta = _DEFAULT_TIMEOUT,
        queue: str = DEFAULT_QUEUE,
        concurrency: int | None = None,
    ) -> Callable[[Handler], Handler]:
        """Register the decorated ``(ctx, data)`` function as the handler of ``name``.

        ``queue`` names the queue its jobs wait in (workers serve chosen
        queues); ``concurrency`` caps how many of its jobs one worker process
        runs at once.
        """
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValidationError(f"invalid job name {name!r}: use letters, digits and _.:-")
        if timeout <= timedelta(0):
            raise ValidationError("timeout must be positive")
        queue = queue_name(queue)
        concurrency = _limit(concurrency, "concurrency")

        def register(fn: Handler) -> Handler:
            if name in self._jobs:
                raise ValidationError(f"job {name!r} is already registered")
            payload_type = _payload_type(fn)
            self._jobs[name] = JobDefinition(
                name=name,
                handler=fn,
                payload_type=payload_type,
                retry=retry or RetryPolicy(),
                timeout=timeout,
                is_async=_is_async(fn),
                _adapter=pydantic.TypeAdapter(payload_type),
                queue=queue,
                concurrency=concurrency,
            )
            return fn

        return register

    def limit_queue(self, queue: str, *, concurrency: int) -> None:
        """Run at most ``concurrency`` jobs of ``queue`` at once in one worker process."""
        limit = _limit(concurrency, "concurrency")
        assert limit is not None
        self._queue_limits[queue_name(queue)] = limit

    def queue_limit(self, queue: str) -> int | None:
        """The per-process cap set by :meth:`limit_queue`, or None."""
        return self._queue_limits.get(queue)

    @property
    def queues(self) -> list[str]:
        """The queues of the registered job types, sorted."""
        return sorted({d.queue for d in self._jobs.values()})

    def get(self, name: str) -> JobDefinition:
        """Return the definition of ``name`` or raise :class:`UnknownJobError`."""
        try:
            return self._jobs[name]
        except KeyError:
            raise UnknownJobError(f"no handler registered for job {name!r}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._jobs

    def __iter__(self) -> Iterator[JobDefinition]:
        return iter(self._jobs.values())

    def __len__(self) -> int:
        return len(self._jobs)


def _limit(value: object, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100_000:
        raise ValidationError(f"{what} must be an int from 1 to 100000, or None")
    return value


def _plain(data: Any) -> Any:
    """A model instance as the JSON-ready values it serializes to (by alias); anything else as it is."""
    if isinstance(data, pydantic.BaseModel):
        return _model_serializer(type(data)).to_python(data, mode="json", by_alias=True)
    return data


@functools.lru_cache(maxsize=256)
def _model_serializer(model: type[pydantic.BaseModel]) -> pydantic_core.SchemaSerializer:
    """``model_dump(mode="json")`` for a payload given as a model instance, keeping non-finite floats."""
    return pydantic_core.SchemaSerializer(model.__pydantic_core_schema__, _KEEP_NON_FINITE)


def _is_async(fn: Callable[..., Any]) -> bool:
    while isinstance(fn, functools.partial):
        fn = fn.func
    return inspect.iscoroutinefunction(fn)


def _payload_type(fn: Callable[..., Any]) -> Any:
    """The annotation of the handler's second parameter (untyped means any JSON)."""
    params = list(inspect.signature(fn).parameters.values())
    if len(params) != 2:
        raise ValidationError(f"handler {fn.__name__} must take (ctx, data)")
    annotation = params[1].annotation
    if annotation is inspect.Parameter.empty:
        return Any
    if not isinstance(annotation, str):
        return annotation
    # Postponed annotations: resolve only the payload's, so an unresolvable
    # ``ctx`` hint in a local scope does not matter.
    scope = {**vars(typing), **fn.__globals__, **inspect.getclosurevars(fn).nonlocals}
    try:
        return eval(annotation, scope)
    except NameError as exc:
        raise ValidationError(f"cannot resolve payload type {annotation!r} of {fn.__name__}: {exc}") from None
