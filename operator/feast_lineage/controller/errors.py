"""What a reconcile pass that raised tells the user: a Stalled reason and a one-line message, or nothing
when the error is transient (the API server restarting, a timeout) and the pass is simply retried."""

from __future__ import annotations

import json

import urllib3
from kubernetes.client.exceptions import ApiException

from feast_lineage.domain.project_state import InputProblem

MESSAGE_LIMIT = 1024


def _api_message(error: ApiException) -> str:
    try:
        body = json.loads(error.body or "{}")
    except (TypeError, ValueError):
        body = {}
    message = body.get("message") if isinstance(body, dict) else None
    return str(message or error.reason or "").strip()


def brief(error: Exception) -> str:
    """One line for a log: an API error as its status, reason and the server's message (the client's
    own text spans lines and carries every response header); anything else as its text on one line."""
    if isinstance(error, ApiException):
        text = f"{error.status} {error.reason or ''}" + (f": {_api_message(error)}" if error.body else "")
    else:
        text = str(error) or type(error).__name__
    return " ".join(text.split())


def stalled_by(error: Exception) -> InputProblem | None:
    """The Stalled reason and message for ``error``; None for a transient error worth retrying as is."""
    if isinstance(error, ApiException):
        if error.status is None or error.status >= 500 or error.status == 429 or error.status == 0:
            return None
        # A request the API server refuses (400, 403, 404, 409, 422) is refused again until something changes.
        detail = _api_message(error)
        return InputProblem(
            "ApiRequestRejected", f"the API server refused a request ({error.status}): {detail}"[:MESSAGE_LIMIT]
        )
    if isinstance(error, OSError | TimeoutError | urllib3.exceptions.HTTPError):
        return None  # the API server or a connection is down for now
    text = " ".join(str(error).split())
    return InputProblem(
        "ReconcileError", f"{type(error).__name__}: {text}"[:MESSAGE_LIMIT] if text else type(error).__name__
    )
