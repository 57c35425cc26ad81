"""How a connector call failed, in the terms a step's ``retry_on`` list uses."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

__all__ = ["ConnectorConfigError", "ConnectorError", "ErrorClass", "classify_status"]


class ErrorClass(StrEnum):
    """Error classes; the first five are the values a DSL ``retry_on`` list may name."""

    TIMEOUT = "timeout"
    CONNECTION = "connection"
    SERVER = "5xx"
    RATE_LIMITED = "429"
    CONFLICT = "409"
    #: Any other 4xx: the request itself is wrong; never retried.
    CLIENT = "4xx"
    #: An answer that is neither success nor an error status (3xx, 1xx), or a 2xx that
    #: is not JSON; never retried.
    RESPONSE = "response"

    @classmethod
    def parse(cls, value: str | int | ErrorClass) -> ErrorClass:
        """``"5xx"``, ``429`` (the DSL lets numbers go unquoted), ``ErrorClass.TIMEOUT``..."""
        try:
            return cls(str(value))
        except ValueError:
            raise ValueError(f"unknown error class {value!r}") from None


def classify_status(status: int) -> ErrorClass:
    if status == 429:
        return ErrorClass.RATE_LIMITED
    if status == 409:
        return ErrorClass.CONFLICT
    if 500 <= status <= 599:
        return ErrorClass.SERVER
    if 400 <= status <= 499:
        return ErrorClass.CLIENT
    return ErrorClass.RESPONSE


class ConnectorConfigError(ValueError):
    """A connector binding is unusable (bad URL, unknown auth method, bad header value);
    the message names the field, never a credential."""


class ConnectorError(Exception):
    """A call failed for good (retries, if any, exhausted or not allowed).

    ``error_class`` is what the engine matches against a step's ``retry_on``; ``status`` and
    ``body_excerpt`` (a short, credential-redacted prefix of the response body) are set for
    HTTP answers; ``retry_after`` (seconds) when the server asked for a delay, including one
    longer than the policy would wait in-process, so the engine can schedule it instead.
    """

    def __init__(
        self,
        error_class: ErrorClass,
        message: str,
        *,
        operation: str,
        status: int | None = None,
        body_excerpt: str = "",
        retry_after: float | None = None,
        attempts: int = 1,
    ) -> None:
        self.error_class = error_class
        self.operation = operation
        self.status = status
        self.body_excerpt = body_excerpt
        self.retry_after = retry_after
        self.attempts = attempts
        self.detail = message
        super().__init__(self._render())

    def _render(self) -> str:
        text = f"{self.operation}: {self.detail} [{self.error_class.value}]"
        if self.body_excerpt:
            text += f": {self.body_excerpt}"
        if self.attempts > 1:
            text += f" (after {self.attempts} attempts)"
        return text

    def with_attempts(self, attempts: int) -> ConnectorError:
        self.attempts = attempts
        self.args = (self._render(),)
        return self

    def matches(self, retry_on: Iterable[str | int | ErrorClass]) -> bool:
        """Whether a step's ``retry_on`` list names this error's class."""
        return any(ErrorClass.parse(item) is self.error_class for item in retry_on)
