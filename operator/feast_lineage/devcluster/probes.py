"""Container probes as a kubelet runs them: startup, then liveness and readiness, each on its period.

``httpGet`` (http and https, certificate not verified, as kubelet does), ``tcpSocket``
and ``exec`` are run; ``exec`` enters the container's mount and network namespaces
with ``nsenter`` (and its user, when it runs as one), with the container's
environment. ``grpc`` probes are not run: they count as succeeding, and the node
says so in an event. Thresholds, periods, timeouts and initial delays default as
in Kubernetes.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Probe = dict[str, Any]


@dataclass(frozen=True)
class ProbeContext:
    """Where the container can be reached from the node."""

    host: str
    pid: int
    env: dict[str, str]
    ports: dict[str, int]
    uid: int | None = None
    gid: int | None = None


def run_probe(probe: Probe, context: ProbeContext) -> tuple[bool, str]:
    """One attempt: (succeeded, why not)."""
    timeout = float(probe.get("timeoutSeconds", 1))
    if "httpGet" in probe:
        return _http(probe["httpGet"], context, timeout)
    if "tcpSocket" in probe:
        port = _port(probe["tcpSocket"]["port"], context)
        try:
            with socket.create_connection((probe["tcpSocket"].get("host") or context.host, port), timeout=timeout):
                return True, ""
        except OSError as error:
            return False, f"dial tcp {context.host}:{port}: {error}"
    if "exec" in probe:
        return _exec(probe["exec"].get("command", []), context, timeout)
    return True, f"probe type {sorted(set(probe) & {'grpc'}) or sorted(probe)} is not run by the local node"


def _port(port: int | str, context: ProbeContext) -> int:
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    return context.ports[str(port)]


def _http(action: dict[str, Any], context: ProbeContext, timeout: float) -> tuple[bool, str]:
    scheme = action.get("scheme", "HTTP").lower()
    host = action.get("host") or context.host
    url = f"{scheme}://{host}:{_port(action['port'], context)}{action.get('path', '/')}"
    request = urllib.request.Request(url, headers={h["name"]: h["value"] for h in action.get("httpHeaders", [])})
    request.add_header("User-Agent", "kube-probe/local")
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=insecure))
    try:
        with opener.open(request, timeout=timeout) as response:
            status = int(response.status)
    except urllib.error.HTTPError as error:
        status = error.code
    except (OSError, ValueError) as error:
        return False, f'Get "{url}": {error}'
    if 200 <= status < 400:
        return True, ""
    return False, f"HTTP probe failed with statuscode: {status}"


def _exec(command: list[str], context: ProbeContext, timeout: float) -> tuple[bool, str]:
    argv = ["nsenter", "-t", str(context.pid), "-m", "-n"]
    if context.uid is not None:
        argv += ["-S", str(context.uid), "-G", str(context.gid if context.gid is not None else context.uid)]
    argv += ["--", "env", "-i", *(f"{k}={v}" for k, v in context.env.items()), *command]
    try:
        done = subprocess.run(argv, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return False, f"command {command!r} timed out after {timeout:g}s"
    if done.returncode == 0:
        return True, ""
    output = (done.stdout + done.stderr).decode(errors="replace").strip()[-512:]
    return False, f"command {command!r} exited with {done.returncode}: {output}"


class ContainerProbes:
    """Runs one container's probes while it lives; reports readiness and asks for a restart."""

    def __init__(
        self,
        container: dict[str, Any],
        context: ProbeContext,
        on_ready: Callable[[bool], None],
        on_unhealthy: Callable[[str, str], None],
        on_event: Callable[[str, str], None],
    ) -> None:
        self.container = container
        self.context = context
        self.on_ready = on_ready
        self.on_unhealthy = on_unhealthy
        self.on_event = on_event
        self.stopping = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._run, name=f"probes-{self.container['name']}", daemon=True).start()

    def stop(self) -> None:
        self.stopping.set()

    def _run(self) -> None:
        startup = self.container.get("startupProbe")
        if startup and not self._loop("Startup", startup, until_success=True):
            return
        readiness = self.container.get("readinessProbe")
        if readiness is None:
            if startup:
                self.on_ready(True)
        else:
            threading.Thread(target=self._loop, args=("Readiness", readiness), daemon=True).start()
        liveness = self.container.get("livenessProbe")
        if liveness is not None:
            self._loop("Liveness", liveness)

    def _loop(self, kind: str, probe: Probe, until_success: bool = False) -> bool:
        """Probe on the period; returns False once a liveness or startup probe has failed for good."""
        period = float(probe.get("periodSeconds", 10))
        successes_needed = int(probe.get("successThreshold", 1))
        failures_allowed = int(probe.get("failureThreshold", 3))
        successes = failures = 0
        ready: bool | None = None
        if self.stopping.wait(float(probe.get("initialDelaySeconds", 0))):
            return True
        while not self.stopping.is_set():
            ok, message = run_probe(probe, self.context)
            if ok and message:
                self.on_event("ProbeNotRun", message)
            successes, failures = (successes + 1, 0) if ok else (0, failures + 1)
            if not ok:
                self.on_event("Unhealthy", f"{kind} probe failed: {message}")
            if until_success and successes >= successes_needed:
                return True
            if kind == "Readiness":
                if successes >= successes_needed and ready is not True:
                    ready = True
                    self.on_ready(True)
                elif failures >= failures_allowed and ready is not False:
                    ready = False
                    self.on_ready(False)
            elif failures >= failures_allowed:
                self.on_unhealthy(kind, message)
                return False
            if self.stopping.wait(period):
                break
        return True
