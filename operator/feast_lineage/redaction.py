"""The one redaction of secret values, applied wherever text leaves the operator or a runner.

Every value that came from a Secret (secretEnv, Git and MLflow credentials) and the user info of any
URL is replaced by ``***`` before it reaches status, an Event, a log line, MLflow or a termination
message. Tools quote what they echo, so each value is also looked for in the forms it takes in
URLs (percent-encoded), in JSON (escaped) and in Python reprs; occurrences that overlap are masked as
one span, so no part of either secret survives.

The operator learns the values by reading the Secrets its resources reference; a runner knows them
from its environment. Both keep them in a :class:`SecretValues` and redact through it.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from functools import lru_cache
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "***"
MIN_SECRET_LENGTH = 4
"""Shorter values are not looked for: masking every "ab" or "1" would erase ordinary words and
numbers while protecting nothing an attacker could not guess."""
MIN_LINE_LENGTH = 16
"""Lines of a multi-line secret (a private key) this long are looked for on their own as well."""

# The user info of a URL: after ``scheme://``, up to the ``@`` that ends it.
_USERINFO = re.compile(r"(?<=://)[^/?#@\s]+(?=@)")
_ESCAPE = re.compile(r"%[0-9A-F]{2}")


@lru_cache(maxsize=4096)
def secret_forms(value: str) -> frozenset[str]:
    """The forms ``value`` takes when a tool echoes it: plain, percent-encoded, JSON-escaped, repr'd."""
    candidates = {value}
    lines = value.splitlines()
    if len(lines) > 1:
        candidates.update(line.strip() for line in lines if len(line.strip()) >= MIN_LINE_LENGTH)
    forms: set[str] = set()
    for plain in candidates:
        encoded = {quote(plain, safe=""), quote(plain), quote_plus(plain)}
        escaped = {json.dumps(plain)[1:-1], json.dumps(plain, ensure_ascii=False)[1:-1], repr(plain)[1:-1]}
        lower_hex = {_ESCAPE.sub(lambda match: match.group(0).lower(), form) for form in encoded}
        forms.update(encoded, lower_hex, escaped, {plain})
    return frozenset(form for form in forms if len(form) >= MIN_SECRET_LENGTH)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with URL user info and every form of every one of ``secrets`` replaced by ``***``."""
    spans = [match.span() for match in _USERINFO.finditer(text)]
    for secret in secrets:
        if len(secret) < MIN_SECRET_LENGTH:
            continue
        for form in secret_forms(secret):
            start = text.find(form)
            while start != -1:
                spans.append((start, start + len(form)))
                start = text.find(form, start + 1)
    if not spans:
        return text
    merged: list[list[int]] = []
    for start, stop in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], stop)
        else:
            merged.append([start, stop])
    pieces: list[str] = []
    position = 0
    for start, stop in merged:
        pieces += [text[position:start], MASK]
        position = stop
    pieces.append(text[position:])
    return "".join(pieces)


def redact_data(data: Any, secrets: Iterable[str] = ()) -> Any:
    """``data`` (JSON-like: dicts, lists, strings) with every string value in it redacted (keys are names
    the writer chose, and stay)."""
    values = tuple(secrets)
    if isinstance(data, str):
        return redact(data, values)
    if isinstance(data, dict):
        return {key: redact_data(item, values) for key, item in data.items()}
    if isinstance(data, list | tuple):
        return [redact_data(item, values) for item in data]
    return data


class SecretValues:
    """The secret values a process knows, thread-safe and bounded (the least recently learned go first)."""

    def __init__(self, limit: int = 10_000) -> None:
        self._values: OrderedDict[str, None] = OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()

    def learn(self, values: Iterable[str | None]) -> None:
        with self._lock:
            for value in values:
                if value and len(value) >= MIN_SECRET_LENGTH:
                    self._values[value] = None
                    self._values.move_to_end(value)
            while len(self._values) > self._limit:
                self._values.popitem(last=False)

    def snapshot(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(self._values)

    def redact(self, text: str) -> str:
        return redact(text, self.snapshot())

    def redact_data(self, data: Any) -> Any:
        return redact_data(data, self.snapshot())


KNOWN = SecretValues()
"""The values this process learned: every exit point redacts with them."""


def redact_record(record: logging.LogRecord, secrets: tuple[str, ...]) -> logging.LogRecord:
    """``record`` with its message, traceback and stack redacted (the arguments merged into the message)."""
    record.msg = redact(record.getMessage(), secrets)
    record.args = None
    if record.exc_info:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.exc_info = None
    if record.exc_text:
        record.exc_text = redact(record.exc_text, secrets)
    if record.stack_info:
        record.stack_info = redact(record.stack_info, secrets)
    return record


def install_log_redaction(values: SecretValues = KNOWN) -> None:
    """Redact every log record of this process as it is made: every handler (a stream, Kopf's Event
    poster) then only ever sees redacted text. Idempotent."""
    current = logging.getLogRecordFactory()
    if getattr(current, "redacts", False):
        return

    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return redact_record(current(*args, **kwargs), values.snapshot())

    make.redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(make)
