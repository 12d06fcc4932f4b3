"""The domain's exceptions.

Every error the domain raises on purpose is a :class:`DomainError`, so callers (the ledger,
the console) can tell "the command was refused" from a bug::

    Exception
    └── DomainError                     root of everything the domain raises on purpose
        ├── InvalidField (+ ValueError) one input field is malformed (names field and value)
        └── RuleViolation               a domain rule refused an otherwise well-formed command
            ├── ApprovalRequired            the action needs an approval it does not have
            ├── SeparationOfDutiesViolated  the same person would hold two incompatible roles
            └── InvalidTransition           the aggregate's state does not allow this step

``InvalidField`` is also a ``ValueError`` so that generic parsing code which already catches
``ValueError`` keeps working.
"""

from __future__ import annotations

__all__ = [
    "ApprovalRequired",
    "DomainError",
    "InvalidField",
    "InvalidTransition",
    "RuleViolation",
    "SeparationOfDutiesViolated",
]

_MAX_REPR = 80


def _short_repr(value: object) -> str:
    """``repr(value)``, cut to 80 characters (77 and ``...``) when longer."""
    text = repr(value)
    if len(text) > _MAX_REPR:
        return text[: _MAX_REPR - 3] + "..."
    return text


class DomainError(Exception):
    """Root of every exception the domain raises on purpose."""


class InvalidField(DomainError, ValueError):
    """One input field is malformed; the message names the field, its value and the problem.

    >>> str(InvalidField("currency", "EURO", "is not an ISO 4217 code"))
    "currency='EURO' is not an ISO 4217 code"
    """

    field: str
    value: object
    problem: str

    def __init__(self, field: str, value: object, problem: str) -> None:
        self.field = field
        self.value = value
        self.problem = problem
        super().__init__(f"{field}={_short_repr(value)} {problem}")


class RuleViolation(DomainError):
    """A domain rule refused a command that was well-formed field by field."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


class ApprovalRequired(RuleViolation):
    """The action needs an approval (e.g. a second person's sign-off) that it does not have."""


class SeparationOfDutiesViolated(RuleViolation):
    """One person would hold two roles that must be held by different people."""


class InvalidTransition(RuleViolation):
    """The aggregate's current state does not allow the requested step."""
