"""Ingestion: audit facts from the ``audit.*`` topics into the ledger, through the domain.

Message format
--------------

Every record on an ``audit.*`` topic is one JSON object, encoded as UTF-8::

    {"source_event_id": "<non-empty string, max 200>",
     "command": "<facade method name>",
     "fields": {<keyword arguments>}}

- ``source_event_id``: the producer's unique id of the fact, 1 to 200 characters,
  without NUL. The ledger records each id once (``ledger_sources``, in the same
  transaction as the fact's events): a message whose id is already recorded, or that
  repeats an id seen earlier in the same batch, is a duplicate. It is acknowledged and
  records nothing.
- ``command``: the name of an ``AuditTrail`` method (``domain/application.py``) that the
  topic the message was read from accepts (table below).
- ``fields``: that method's keyword arguments, named as the method names them. Those
  without a default are required; no others are accepted. ``source_event_id`` is never
  one of them: the envelope's is recorded. A command on an existing aggregate names it by
  its natural key instead of its UUID (table below).
- The object has no other keys; no object in it holds a key twice. Numbers are exact
  decimals (``101.10`` is recorded as ``101.10``, never as a binary float); ``NaN``,
  ``Infinity`` and ``-Infinity`` are refused, and so are strings holding an unpaired
  surrogate (``"\\ud800"``). Times are ISO 8601 strings with an offset
  (``"2026-03-02T09:00:00.123456Z"``).

Commands per topic:

==================  ================================================================
``audit.trading``   make_trade_decision, place_order, amend_order, cancel_order,
                    record_execution, amend_execution, cancel_execution,
                    record_market_data_usage
``audit.risk``      record_risk_calculation, record_compliance_check
``audit.changes``   request_deployment, approve_deployment, start_deployment,
                    promote_deployment, roll_back_deployment
``audit.activity``  record_user_action
``audit.models``    register_model_version, record_shadow_comparison
==================  ================================================================

Natural keys of the commands on an existing aggregate:

===================  ==========================================================
``client_order_id``  amend_order, cancel_order
``execution_id``     amend_execution, cancel_execution
``change_ticket``    approve_deployment, start_deployment, promote_deployment,
                     roll_back_deployment
===================  ==========================================================

For example, on ``audit.trading``::

    {"source_event_id": "oms-7f3a-000123", "command": "amend_order",
     "fields": {"client_order_id": "C-20260302-0001", "quantity": "500",
                "reason": "client request", "actor": "trader.ana",
                "occurred_at": "2026-03-02T09:00:01.250000Z"}}

A message that cannot be recorded is a :class:`~streams.messages.Rejection`: the worker
sends its bytes, unchanged, to ``audit.dlq``. Its field (header ``regledger-field``) is

- ``message``: not UTF-8, not JSON, or not a JSON object (or events too large to record);
- ``source_event_id``: missing or malformed, or inside ``fields``;
- ``command``: missing, unknown, not accepted on the topic read, or refused by a domain
  rule (separation of duties, approval before start, a cancelled order amended, ...);
- ``fields``: missing or not an object;
- a key of ``fields`` or of the message: unknown, missing, given twice, or invalid (the
  domain's message, e.g. ``quantity='-3' must be > 0``); for the natural key also when it
  names no recorded aggregate, and for the key of a created aggregate (``client_order_id``
  of ``place_order``) when that aggregate is already recorded.

How a batch is recorded (:meth:`Ingestor.ingest`): every command of the batch runs on
one application that buffers its events, and all of them are appended in one ledger
transaction. If a command is refused, nothing of the buffer is kept, the message is
rejected and the batch runs again without it (up to :data:`FAST_REFUSALS` times a batch).
Past that, or if the append is refused (an aggregate or a source id recorded meanwhile),
each remaining message is recorded alone. Either way each command runs on the state the
messages before it left, so the outcome is the one of recording them one by one. A
database failure propagates: the worker must not acknowledge the batch.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType, TracebackType
from typing import Any, Self, cast
from uuid import UUID

from eventsourcing.application import (
    AggregateNotFoundError,
    ProcessingEvent,
    ProjectorFunction,
    Repository,
    project_aggregate,
)
from eventsourcing.domain import (
    Aggregate,
    DomainEventProtocol,
    MutableOrImmutableAggregate,
    TDomainEvent,
    TMutableOrImmutableAggregate,
)
from eventsourcing.persistence import EventStore, IntegrityError, Recording

from domain import identifiers as check
from domain.application import AuditTrail
from domain.base import natural_id
from domain.errors import DomainError, InvalidField
from ledger.errors import DuplicateSourceError, InvalidEventError
from ledger.factory import LedgerFactory, application_env
from ledger.settings import Settings
from ledger.store import ChainStore

from .messages import RawMessage, Rejection
from .topics import AUDIT_DLQ, AUDIT_TOPICS

__all__ = [
    "AGGREGATE_KEYS",
    "AUDIT_COMMANDS",
    "AUDIT_DLQ",
    "AUDIT_TOPICS",
    "AuditCommand",
    "IngestResult",
    "Ingestor",
    "parse_message",
]

# Topic -> the facade commands a message on it may carry.
AUDIT_COMMANDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "audit.trading": (
            "make_trade_decision", "place_order", "amend_order", "cancel_order",
            "record_execution", "amend_execution", "cancel_execution",
            "record_market_data_usage",
        ),
        "audit.risk": ("record_risk_calculation", "record_compliance_check"),
        "audit.changes": (
            "request_deployment", "approve_deployment", "start_deployment",
            "promote_deployment", "roll_back_deployment",
        ),
        "audit.activity": ("record_user_action",),
        "audit.models": ("register_model_version", "record_shadow_comparison"),
    }
)  # fmt: skip

# Command on an existing aggregate -> (its natural key field, the kind given to natural_id).
AGGREGATE_KEYS: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "amend_order": ("client_order_id", "order"),
        "cancel_order": ("client_order_id", "order"),
        "amend_execution": ("execution_id", "execution"),
        "cancel_execution": ("execution_id", "execution"),
        "approve_deployment": ("change_ticket", "deployment"),
        "start_deployment": ("change_ticket", "deployment"),
        "promote_deployment": ("change_ticket", "deployment"),
        "roll_back_deployment": ("change_ticket", "deployment"),
    }
)

# Command that creates an aggregate -> the field that keys it (named when it exists already).
_CREATED_KEYS = MappingProxyType(
    {
        "make_trade_decision": "decision_id",
        "place_order": "client_order_id",
        "record_execution": "execution_id",
        "record_market_data_usage": "usage_id",
        "record_risk_calculation": "calculation_id",
        "record_compliance_check": "check_id",
        "request_deployment": "change_ticket",
        "roll_back_deployment": "rollback_id",
        "record_user_action": "action_id",
        "register_model_version": "version",
        "record_shadow_comparison": "comparison_id",
    }
)

_COMMAND_TOPIC = {command: topic for topic, names in AUDIT_COMMANDS.items() for command in names}
_ENVELOPE = ("source_event_id", "command", "fields")
_MAX_SOURCE_ID = 200
_RETRIES = 3  # of one message whose aggregate another writer changed meanwhile
FAST_REFUSALS = 8  # refused commands a batch drops and runs again without, before going
# message by message (each rerun costs the batch again)
# What a command raises when it refuses its message: the domain's errors, an unknown
# aggregate, and the plain errors of a value the domain did not check (a year past 9999
# once in UTC). The database's errors are none of these: they propagate.
_REFUSED = (DomainError, AggregateNotFoundError, ArithmeticError, TypeError, ValueError)


@dataclass(frozen=True)
class _Fields:
    """The ``fields`` of one command: all it accepts and those it requires, in order."""

    accepted: tuple[str, ...]  # sorted, to show
    required: tuple[str, ...]
    names: frozenset[str]  # those accepted, to look up


def _fields_of(command: str) -> _Fields:
    parameters = list(inspect.signature(getattr(AuditTrail, command)).parameters.values())[1:]
    keyword = [p for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY]
    accepted = [p.name for p in keyword if p.name != "source_event_id"]
    required = [p.name for p in keyword if p.default is inspect.Parameter.empty]
    if command in AGGREGATE_KEYS:
        # The aggregate's UUID (the one positional parameter) comes from its natural key.
        assert len(parameters) == len(keyword) + 1, command
        key = AGGREGATE_KEYS[command][0]
        accepted.insert(0, key)
        required.insert(0, key)
    return _Fields(tuple(sorted(accepted)), tuple(required), frozenset(accepted))


_FIELDS = {command: _fields_of(command) for command in _COMMAND_TOPIC}


# --- parsing (pure) -------------------------------------------------------------------


@dataclass(frozen=True)
class AuditCommand:
    """One message, parsed and checked against its command's signature."""

    message: RawMessage
    source_event_id: str
    command: str
    fields: Mapping[str, Any] = field(hash=False)  # as sent, natural key included
    aggregate_id: UUID | None = None  # natural_id of the key, for an existing aggregate

    def arguments(self) -> dict[str, Any]:
        """The facade method's keyword arguments (the natural key is ``aggregate_id``)."""
        arguments = dict(self.fields)
        if self.command in AGGREGATE_KEYS:
            del arguments[AGGREGATE_KEYS[self.command][0]]
        arguments["source_event_id"] = self.source_event_id
        return arguments


class _Unfit:
    """A JSON value the ledger does not take: NaN or an infinity, or an object holding a
    key twice (``duplicate``). Parsing leaves it in place, so the field can be named."""

    __slots__ = ("duplicate", "text")

    def __init__(self, text: str, duplicate: str | None = None) -> None:
        self.text = text
        self.duplicate = duplicate

    def __repr__(self) -> str:
        return self.text


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any] | _Unfit:
    value = dict(pairs)
    if len(value) == len(pairs):
        return value
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            return _Unfit("{...}", key)
        seen.add(key)
    raise AssertionError("unreachable")  # pragma: no cover


_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=_Unfit, object_pairs_hook=_object)
_PLAIN = frozenset({int, bool, Decimal, type(None)})  # values that need no closer look


def _is_text(value: str) -> bool:
    """Can ``value`` be stored as UTF-8 (no unpaired surrogate)?"""
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _unfit_in(name: str, value: object) -> str | None:
    """Why ``value``, the field ``name``, cannot be recorded; None when it can."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _Unfit):
            if item.duplicate is not None:
                return f"{name} holds the key {item.duplicate!r} twice"
            verb = "is" if item is value else "holds"
            return f"{name} {verb} {item.text}, which JSON does not allow: send a finite number"
        if isinstance(item, str):
            if not _is_text(item):
                return f"{name} holds an unpaired surrogate, which is not Unicode text"
        elif isinstance(item, dict):
            for key, inner in item.items():
                if not _is_text(key):
                    return f"{name} holds an unpaired surrogate, which is not Unicode text"
                stack.append(inner)
        elif isinstance(item, list):
            stack.extend(reversed(item))
    return None


def _kind(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, _Unfit):
        return value.text
    return "a number"


def parse_message(message: RawMessage) -> AuditCommand | Rejection:
    """The command ``message`` carries, or why it cannot be recorded (pure: no I/O).

    >>> m = RawMessage("audit.activity", 0, 7, None, b'{"source_event_id": "a-1"}')
    >>> parse_message(m).error
    'command is missing: the message names no AuditTrail command'
    """

    def reject(field: str, error: str) -> Rejection:
        return Rejection(message, field, error)

    try:
        document = _DECODER.decode(message.value.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return reject("message", f"message is not UTF-8: {exc.reason} at byte {exc.start}")
    except json.JSONDecodeError as exc:
        return reject(
            "message", f"message is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        )
    except (ValueError, RecursionError) as exc:  # e.g. an integer of 5,000 digits
        return reject("message", f"message is not JSON the ledger can take: {exc}")
    if isinstance(document, _Unfit) and document.duplicate is not None:
        return reject(document.duplicate, f"{document.duplicate} appears twice in the message")
    if not isinstance(document, dict):
        return reject("message", f"message must be a JSON object, not {_kind(document)}")

    if "source_event_id" not in document:
        return reject(
            "source_event_id",
            "source_event_id is missing: every message needs its unique id",
        )
    source_event_id = document["source_event_id"]
    if (
        not isinstance(source_event_id, str)
        or not 0 < len(source_event_id) <= _MAX_SOURCE_ID
        or "\x00" in source_event_id
        or not _is_text(source_event_id)
    ):
        problem = f"must be a string of 1 to {_MAX_SOURCE_ID} characters without NUL"
        return reject(
            "source_event_id", str(InvalidField("source_event_id", source_event_id, problem))
        )

    if message.topic not in AUDIT_COMMANDS:
        return reject(
            "message",
            f"message was read from {message.topic!r}, which is not an audit topic "
            f"({', '.join(AUDIT_TOPICS)})",
        )
    if "command" not in document:
        return reject("command", "command is missing: the message names no AuditTrail command")
    command = document["command"]
    accepted = AUDIT_COMMANDS[message.topic]
    if command not in accepted:
        home = _COMMAND_TOPIC.get(command) if isinstance(command, str) else None
        problem = (
            f"is not accepted on {message.topic}; send it to {home}"
            if home is not None
            else f"is not a command of {message.topic}: use one of {', '.join(accepted)}"
        )
        return reject("command", str(InvalidField("command", command, problem)))

    if "fields" not in document:
        return reject("fields", f"fields is missing: {command} needs its arguments")
    fields = document["fields"]
    if isinstance(fields, _Unfit) and fields.duplicate is not None:
        return reject(fields.duplicate, f"{fields.duplicate} appears twice in fields")
    if not isinstance(fields, dict):
        problem = f"must be a JSON object of {command}'s arguments"
        return reject("fields", str(InvalidField("fields", fields, problem)))
    for key in document:
        if key not in _ENVELOPE:
            unknown = key if key and _is_text(key) else "message"  # a field has a name
            return reject(
                unknown,
                f"{key!r} is not a key of a message: it has only source_event_id, command "
                "and fields",
            )

    signature = _FIELDS[command]
    for key, value in fields.items():
        if key == "source_event_id":
            return reject(
                "source_event_id",
                "source_event_id belongs in the message, not in fields",
            )
        if key not in signature.names:
            return reject(
                key if key and _is_text(key) else "fields",
                f"{key!r} is not a field of {command}; its fields are "
                f"{', '.join(signature.accepted)}",
            )
        if type(value) in _PLAIN or (type(value) is str and value.isascii()):
            continue
        unfit = _unfit_in(key, value)
        if unfit is not None:
            return reject(key, unfit)
    for key in signature.required:
        if key not in fields:
            return reject(key, f"{key} is missing: {command} requires it")

    aggregate_id = None
    if command in AGGREGATE_KEYS:
        key, kind = AGGREGATE_KEYS[command]
        try:
            aggregate_id = natural_id(kind, check.non_empty(fields[key], key))
        except InvalidField as exc:
            return reject(exc.field, str(exc))
    return AuditCommand(message, source_event_id, command, fields, aggregate_id)


# --- recording --------------------------------------------------------------------------


@dataclass
class IngestResult:
    """What one batch came to: each message is recorded, a duplicate, or rejected, so
    ``messages == recorded + duplicates + len(rejected)``."""

    messages: int = 0
    recorded: int = 0  # messages whose events were appended
    events: int = 0  # ledger events appended
    duplicates: int = 0  # source ids already in the ledger or repeated in the batch
    rejected: list[Rejection] = field(default_factory=list)


class _BatchRepository(Repository[UUID]):
    """Returns the aggregates a batch has already touched, as the batch left them."""

    def __init__(self, event_store: EventStore[UUID]) -> None:
        super().__init__(event_store)
        self.touched: dict[UUID, MutableOrImmutableAggregate[UUID]] = {}

    def get(
        self,
        aggregate_id: UUID,
        *,
        version: int | None = None,
        projector_func: ProjectorFunction[
            TMutableOrImmutableAggregate, TDomainEvent
        ] = project_aggregate,
        fastforward_skipping: bool = False,
        deepcopy_from_cache: bool = True,
    ) -> TMutableOrImmutableAggregate:
        touched = self.touched.get(aggregate_id)
        if touched is not None and version is None:
            return cast(TMutableOrImmutableAggregate, touched)
        return super().get(
            aggregate_id,
            version=version,
            projector_func=projector_func,
            fastforward_skipping=fastforward_skipping,
            deepcopy_from_cache=deepcopy_from_cache,
        )


class _BatchTrail(AuditTrail):
    """The audit trail with its saves held back: ``pending`` collects the events, to be
    appended together by :class:`Ingestor`."""

    name = "AuditTrail"

    def __init__(self, env: Mapping[str, str]) -> None:
        self.pending: list[DomainEventProtocol[UUID]] = []
        super().__init__(env=env)

    def construct_repository(self) -> Repository[UUID]:
        return _BatchRepository(self.events)

    @property
    def batch(self) -> _BatchRepository:
        return cast(_BatchRepository, self.repository)

    def begin(self) -> None:
        """Forget what was held: the next command sees only the ledger."""
        self.pending = []
        self.batch.touched.clear()

    def save(
        self,
        *objs: MutableOrImmutableAggregate[UUID] | DomainEventProtocol[UUID] | None,
        **kwargs: Any,
    ) -> list[Recording[UUID]]:
        # As Application.save, without its runtime Protocol checks (a quarter of the time a
        # command takes): the facade saves only aggregates.
        processing_event = ProcessingEvent[UUID]()
        for obj in objs:
            if isinstance(obj, Aggregate):
                processing_event.events.extend(obj.collect_events())
                processing_event.aggregates[obj.id] = obj
            else:
                processing_event.collect_events(obj)
        processing_event.saved_kwargs.update(kwargs)
        return self._record(processing_event)

    def _record(self, processing_event: ProcessingEvent[UUID]) -> list[Recording[UUID]]:
        self.pending.extend(processing_event.events)
        self.batch.touched.update(processing_event.aggregates)
        return []


class Ingestor:
    """Records batches of ``audit.*`` messages, each fact once, through the domain.

    ``actor_prefix`` is put before every recorded actor (e.g. ``"oms:"``).

    >>> with Ingestor(settings) as ingestor:  # doctest: +SKIP
    ...     result = ingestor.ingest(messages)  # then send result.rejected to audit.dlq
    """

    def __init__(self, settings: Settings, *, actor_prefix: str = "") -> None:
        self.actor_prefix = actor_prefix
        self._trail = _BatchTrail(env=application_env(settings))
        factory = self._trail.factory
        assert isinstance(factory, LedgerFactory), factory
        self._store: ChainStore = factory.store

    def close(self) -> None:
        self._trail.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def ingest(self, messages: Sequence[RawMessage]) -> IngestResult:
        """Record what ``messages`` carry; return what became of each.

        Raises what the ledger raises when it cannot be reached or written
        (``StoreUnavailableError``, ``AppendTimeoutError``, ...): then nothing of the
        batch may be acknowledged, though some of it may be recorded (redelivered, it is
        a duplicate).
        """
        result = IngestResult(messages=len(messages))
        rejected: list[tuple[int, Rejection]] = []
        commands: dict[str, tuple[int, AuditCommand]] = {}  # by source id, in batch order
        for index, message in enumerate(messages):
            parsed = parse_message(message)
            if isinstance(parsed, Rejection):
                rejected.append((index, parsed))
            elif parsed.source_event_id in commands:
                result.duplicates += 1
            else:
                commands[parsed.source_event_id] = (index, parsed)
        for source_event_id in self._store.source_positions(list(commands)):
            del commands[source_event_id]
            result.duplicates += 1
        fresh = list(commands.values())
        for _ in range(FAST_REFUSALS + 1):
            if not fresh:
                break
            refused = self._record_together([command for _, command in fresh], result)
            if refused is None:
                fresh = []  # all recorded
            elif isinstance(refused, _Refused):
                index, command = fresh.pop(refused.position)
                rejected.append((index, _refusal(command, refused.error)))
            else:
                break  # the append was refused: one by one
        for index, command in fresh:
            rejection = self._record_alone(command, result)
            if rejection is not None:
                rejected.append((index, rejection))
        result.rejected = [r for _, r in sorted(rejected, key=lambda pair: pair[0])]
        return result

    # --- the two paths --------------------------------------------------------------------

    def _record_together(
        self, commands: Sequence[AuditCommand], result: IngestResult
    ) -> _Refused | Exception | None:
        """Run every command, then append all their events in one transaction; None when
        recorded, else (nothing recorded) the first refused command or the append's error."""
        sources: list[tuple[str, int]] = []
        try:
            events = self._held(lambda: self._run_all(commands, sources))
        except _Refused as refused:
            return refused  # the held aggregates may be half changed: they are forgotten
        try:
            self._trail.events.put(events, sources=sources)
        except (IntegrityError, InvalidEventError) as exc:
            return exc
        result.recorded += len(commands)
        result.events += len(events)
        return None

    def _record_alone(self, command: AuditCommand, result: IngestResult) -> Rejection | None:
        """Run one command on fresh aggregates and append its events on their own."""
        for attempt in range(1, _RETRIES + 1):
            try:
                events = self._held(lambda: self._run(command))
            except _REFUSED as exc:
                return _refusal(command, exc)
            try:
                self._trail.events.put(events, sources=[(command.source_event_id, 0)])
            except DuplicateSourceError:
                result.duplicates += 1  # recorded by another writer since we looked
                return None
            except IntegrityError:
                if self._creates_recorded(events):
                    key = _CREATED_KEYS[command.command]
                    problem = "is already recorded; a recorded fact is never replaced"
                    value = command.fields.get(key)
                    return Rejection(command.message, key, str(InvalidField(key, value, problem)))
                if attempt == _RETRIES:
                    raise
                continue  # another writer changed the aggregate since we read it: again
            except InvalidEventError as exc:
                error = f"the ledger refuses the events of {command.command}: {exc}"
                return Rejection(command.message, "message", error)
            result.recorded += 1
            result.events += len(events)
            return None
        raise AssertionError("unreachable")  # pragma: no cover

    def _held(self, run: Callable[[], None]) -> list[DomainEventProtocol[UUID]]:
        """The events ``run`` saves, on aggregates fresh from the ledger, held back; the
        aggregates are forgotten afterwards, whatever happens."""
        trail = self._trail
        trail.begin()
        try:
            run()
            return trail.pending
        finally:
            trail.begin()  # a new list: the one returned is the caller's

    def _run_all(self, commands: Sequence[AuditCommand], sources: list[tuple[str, int]]) -> None:
        for position, command in enumerate(commands):
            sources.append((command.source_event_id, len(self._trail.pending)))
            try:
                self._run(command)
            except _REFUSED as exc:
                raise _Refused(position, exc) from exc

    def _run(self, command: AuditCommand) -> None:
        arguments = command.arguments()
        actor = arguments.get("actor")
        if self.actor_prefix and isinstance(actor, str) and actor.strip():
            arguments["actor"] = self.actor_prefix + actor.strip()
        method: Callable[..., object] = getattr(self._trail, command.command)
        if command.aggregate_id is None:
            method(**arguments)
        else:
            method(command.aggregate_id, **arguments)

    def _creates_recorded(self, events: Sequence[DomainEventProtocol[UUID]]) -> bool:
        """Would ``events`` create an aggregate the ledger already holds?"""
        return any(
            event.originator_version == 1
            and self._store.select_events(str(event.originator_id), limit=1)
            for event in events
        )


class _Refused(Exception):
    """The command at ``position`` of a batch refused its message with ``error``."""

    def __init__(self, position: int, error: Exception) -> None:
        super().__init__(position, error)
        self.position = position
        self.error = error


def _refusal(command: AuditCommand, exc: Exception) -> Rejection:
    """The rejection of a command the domain refused."""
    if isinstance(exc, InvalidField):
        return Rejection(command.message, exc.field, str(exc))
    if isinstance(exc, DomainError):  # RuleViolation: separation of duties, transitions
        return Rejection(command.message, "command", _one_line(str(exc)))
    if isinstance(exc, AggregateNotFoundError):
        key, kind = AGGREGATE_KEYS[command.command]
        problem = f"names no recorded {kind}"
        return Rejection(command.message, key, str(InvalidField(key, command.fields[key], problem)))
    # The domain failed on a value it should have refused by name (a bug to fix there).
    error = f"{command.command} failed on its fields: {type(exc).__name__}: {exc}"
    return Rejection(command.message, "command", _one_line(error))


def _one_line(text: str) -> str:
    """``text`` as one line (a rule's message may quote an actor holding a line break)."""
    return text.replace("\r", "\\r").replace("\n", "\\n")
