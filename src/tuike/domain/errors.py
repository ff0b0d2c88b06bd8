"""Errors raised by domain rules; the web layer maps them to HTTP answers."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every rule violation."""


class InvalidField(DomainError):
    """A field of a request is malformed (maps to 400)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class Conflict(DomainError):
    """A request is well formed but contradicts the current state (maps to 409)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    """The thing asked for does not exist, or is not visible to the caller (maps to 404)."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} not found")
        self.what = what
        self.message = f"{what} not found"


class Forbidden(DomainError):
    """The caller may not do this (maps to 403)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
