"""Errors of audit delivery; every message is one line and never contains credentials."""

from __future__ import annotations


def one_line(text: str, limit: int = 300) -> str:
    """Whitespace collapsed to single spaces, cut to ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


class DeliveryError(Exception):
    """An audit record could not be delivered to MLflow."""

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))


class PermanentDeliveryError(DeliveryError):
    """Retrying cannot help (an untrusted certificate, an answer beyond the size cap, a 4xx):
    the record is set aside with this reason instead of blocking others."""


class MlflowApiError(PermanentDeliveryError):
    """MLflow answered with an error (after retries, if it was a retryable one)."""

    def __init__(self, endpoint: str, status: int, error_code: str, message: str) -> None:
        super().__init__(f"MLflow {endpoint}: HTTP {status} {error_code}: {message}")
        self.endpoint = endpoint
        self.status = status
        self.error_code = error_code
