"""Serving errors carrying an absl status code name, and the code-to-HTTP mapping (spec §1.2)."""

from __future__ import annotations

# absl / tensorflow.error.Code names indexed by their numeric value.
CODE_NAMES: tuple[str, ...] = (
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
    "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
    "UNAUTHENTICATED",
)
CODE_NUMBERS: dict[str, int] = {name: number for number, name in enumerate(CODE_NAMES)}

HTTP_STATUS: dict[str, int] = {
    "OK": 200, "CANCELLED": 499, "UNKNOWN": 500, "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504, "NOT_FOUND": 404, "ALREADY_EXISTS": 409, "PERMISSION_DENIED": 403,
    "RESOURCE_EXHAUSTED": 429, "FAILED_PRECONDITION": 400, "ABORTED": 409, "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501, "INTERNAL": 500, "UNAVAILABLE": 503, "DATA_LOSS": 500,
    "UNAUTHENTICATED": 401,
}


def http_status(code: str) -> int:
    """Returns TF Serving's HTTP status for an absl code name (500 for an unknown name)."""
    return HTTP_STATUS.get(code, 500)


class ServingError(Exception):
    """A request or model-management failure with an absl code name and TF Serving's text.

    Attributes:
        code: absl code name, e.g. ``"NOT_FOUND"``.
        message: the status message as TF Serving would report it.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def invalid_argument(message: str) -> ServingError:
    """Returns an INVALID_ARGUMENT error."""
    return ServingError("INVALID_ARGUMENT", message)


def not_found(message: str) -> ServingError:
    """Returns a NOT_FOUND error."""
    return ServingError("NOT_FOUND", message)


def failed_precondition(message: str) -> ServingError:
    """Returns a FAILED_PRECONDITION error."""
    return ServingError("FAILED_PRECONDITION", message)


def as_serving_error(exc: BaseException) -> ServingError:
    """Converts any exception into a ServingError.

    Errors that already carry a string ``code`` and a ``message`` (ServingError, the REST codec's
    RestError, the batcher's BatchingError) keep them; TensorFlow ``OpError``s keep their numeric
    code; anything else becomes INTERNAL with its text.
    """
    if isinstance(exc, ServingError):
        return exc
    code = getattr(exc, "code", None)
    message = getattr(exc, "message", None)
    if isinstance(code, str) and code in CODE_NUMBERS and isinstance(message, str):
        return ServingError(code, message)
    error_code = getattr(exc, "error_code", None)
    if isinstance(error_code, int) and 0 < error_code < len(CODE_NAMES):
        return ServingError(CODE_NAMES[error_code], str(getattr(exc, "message", exc)))
    return ServingError("INTERNAL", f"{type(exc).__name__}: {exc}")
