"""Keeping Feast's console output off stdout while remembering its last lines.

Feast reports some failures only by printing and calling ``sys.exit(1)``; the runner's stdout
must end with the result JSON. So Feast's output is passed to stderr (the pod log) and its tail
is kept for the error message.
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
from collections import deque
from collections.abc import Iterator
from typing import TextIO

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class _Tee(io.TextIOBase):
    def __init__(self, target: TextIO, keep_lines: int) -> None:
        self._target = target
        self._partial = ""
        self.lines: deque[str] = deque(maxlen=keep_lines)

    def write(self, text: str) -> int:
        self._target.write(text)
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        self.lines.extend(clean for line in lines if (clean := _ANSI.sub("", line).strip()))
        return len(text)

    def flush(self) -> None:
        self._target.flush()

    def last_line(self) -> str | None:
        partial = _ANSI.sub("", self._partial).strip()
        return partial or (self.lines[-1] if self.lines else None)


@contextlib.contextmanager
def feast_output(keep_lines: int = 20) -> Iterator[_Tee]:
    """Redirect stdout to stderr for the block; the yielded object knows the last line printed."""
    tee = _Tee(sys.stderr, keep_lines)
    with contextlib.redirect_stdout(tee):
        yield tee
