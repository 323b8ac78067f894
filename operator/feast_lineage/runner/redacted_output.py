"""The runner's stdout and stderr pass through redaction before they reach the pod log.

User code in the feature repo runs in the runner's process and may print anything, its environment
included; Feast and its libraries echo configuration values. So the file descriptors 1 and 2 are
pipes, each drained by a thread that writes the redacted text to the real stream: whatever writes to
them (Python, C code, a child process) is redacted. They are closed last at exit, after the exit
handlers user code registered have run.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading

from feast_lineage.redaction import SecretValues

_CHUNK = 65536
_HELD_LIMIT = 1 << 20
"""Text without a line end is held back at most this long (a secret split in two would escape)."""
_KEPT_TAIL = 4096
_CLOSE_WAIT_SECONDS = 5.0


class _Pump:
    """One file descriptor replaced by a pipe; a thread writes what comes through, redacted, to the original."""

    def __init__(self, fd: int, values: SecretValues) -> None:
        self.fd = fd
        self.values = values
        self.original = os.dup(fd)
        read_end, write_end = os.pipe()
        os.dup2(write_end, fd)
        os.close(write_end)
        self.source = read_end
        self.thread = threading.Thread(target=self._run, name=f"redact-fd{fd}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        held = b""
        while chunk := os.read(self.source, _CHUNK):
            held += chunk
            end = max(held.rfind(b"\n"), held.rfind(b"\r")) + 1
            if end:
                self._write(held[:end])
                held = held[end:]
            elif len(held) > _HELD_LIMIT:
                self._write(held[:-_KEPT_TAIL])
                held = held[-_KEPT_TAIL:]
        if held:
            self._write(held)
        os.close(self.source)

    def _write(self, data: bytes) -> None:
        out = self.values.redact(data.decode("utf-8", "replace")).encode()
        try:
            while out:
                out = out[os.write(self.original, out) :]
        except OSError:
            pass  # the pod log is gone: nothing else to do with the text

    def close(self) -> None:
        # Put the original back: the pipe's last writer in this process goes, and the thread sees
        # the end once child processes that inherited it have ended too.
        os.dup2(self.original, self.fd)
        self.thread.join(_CLOSE_WAIT_SECONDS)


def redact_output(values: SecretValues) -> None:
    """From now until the process exits, stdout and stderr are redacted with ``values``."""
    sys.stdout.flush()
    sys.stderr.flush()
    pumps = [_Pump(fd, values) for fd in (1, 2)]

    def close() -> None:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        for pump in pumps:
            pump.close()

    # Registered first, so it runs after every exit handler registered later (user code's included).
    atexit.register(close)
