"""Structured fields for log lines about one object (``name`` itself is taken by LogRecord)."""

from __future__ import annotations


def object_fields(namespace: str | None, name: str | None, generation: int | None = None) -> dict[str, object]:
    return {"k8s_namespace": namespace, "k8s_name": name, "generation": generation}
