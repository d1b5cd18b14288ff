"""Domain errors: services raise these; views and the API turn them into responses."""

from __future__ import annotations


class DomainError(Exception):
    """Base class; `message` is user-facing and already translated."""

    status_code = 400

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message


class NotAllowed(DomainError):
    status_code = 403


class NotFound(DomainError):
    status_code = 404


class Conflict(DomainError):
    """The object changed since the actor loaded it."""

    status_code = 409


class ValidationError(DomainError):
    """Bad input: `errors` maps a field name to its message."""

    status_code = 422

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


class DuplicateTitle(ValidationError):
    """A live idea on the board already has this title: `existing` is that idea."""

    def __init__(self, errors: dict[str, str], existing) -> None:
        super().__init__(errors)
        self.existing = existing
