"""Domain errors for Recur. Each carries the offending field and value so callers can say what to change."""

from __future__ import annotations

from typing import Any


class RecurError(Exception):
    """Base class for every error Recur raises on purpose."""

    code = "recur_error"

    def __init__(self, message: str, *, field: str | None = None, value: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.value = value

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.code, "detail": self.message}
        if self.field is not None:
            out["field"] = self.field
        return out


class InputError(RecurError):
    """Input data or a request argument is invalid."""

    code = "invalid_input"


class StrictModeError(InputError):
    """Raised when strict validation is on and at least one record was quarantined."""

    code = "strict_rejects"


class NotFittedError(RecurError):
    """A model stage was used before `fit`."""

    code = "not_fitted"


class ModelUnavailableError(RecurError):
    """No registered model (champion) is available to answer."""

    code = "model_unavailable"


class NotFoundError(RecurError):
    """A requested object (incident, pattern, series, experiment) does not exist."""

    code = "not_found"


def check_format(data: Any, expected: str, what: str) -> dict[str, Any]:
    """``data`` as a dict whose ``format`` is ``expected``; otherwise an :class:`InputError` naming ``what``."""
    if not isinstance(data, dict) or data.get("format") != expected:
        got = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise InputError(f"{what} data has format {got!r}, expected {expected!r}", field="format", value=got)
    return data
