"""Log lines about one object, and the text format that shows which object a line is about.

The operator's own lines about an object carry ``k8s_namespace`` and ``k8s_name``
(``name`` itself is taken by LogRecord); Kopf's lines carry the object as ``k8s_ref``.
The JSON format shows both as fields; the text format puts ``[namespace/name]``
before the message.
"""

from __future__ import annotations

import copy
import logging

TEXT_FORMAT = "[%(asctime)s] %(name)s [%(levelname)-8s] %(message)s"
"""Kopf's full format, without cutting the logger name to 20 characters."""


def object_fields(namespace: str | None, name: str | None, generation: int | None = None) -> dict[str, object]:
    return {"k8s_namespace": namespace, "k8s_name": name, "generation": generation}


def object_of(record: logging.LogRecord) -> str | None:
    """``namespace/name`` (or ``name``) of the object a record is about, if it is about one."""
    namespace, name = getattr(record, "k8s_namespace", None), getattr(record, "k8s_name", None)
    ref = getattr(record, "k8s_ref", None)
    if not name and isinstance(ref, dict):
        namespace, name = ref.get("namespace"), ref.get("name")
    if not name:
        return None
    return f"{namespace}/{name}" if namespace else str(name)


class TextFormatter(logging.Formatter):
    """One line per record: time, the whole logger name, level, ``[namespace/name]`` and the message."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        about = object_of(record)
        if about is not None:
            record = copy.copy(record)  # other handlers get the record unchanged
            record.msg = f"[{about}] {record.msg}"
        return super().format(record)


class LoggerNameField(logging.Filter):
    """Adds the logger's name as a ``logger`` field to each record: the JSON format shows extra fields
    but not the logger, and without it the operator's lines and Kopf's look alike."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.logger = record.name
        return True
