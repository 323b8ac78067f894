"""What the benchmarks read about the operator process and the API server: CPU, memory, requests.

The API server counts every request it serves (``apiserver_request_total``, by resource and verb);
the operator's share is the requests on resources the controller-manager reads from its informers
and never asks for one by one: the two custom resources (every verb), and GET/POST of Jobs, LIST
of Pods. The benchmark subtracts its own requests.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client

_SAMPLE = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>[0-9.e+]+)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')
OPERATOR_RESOURCES = frozenset({"materializationjobs", "featurestoreprojects"})
OPERATOR_ONLY_VERBS = {"jobs": frozenset({"GET", "POST"}), "pods": frozenset({"LIST"})}


def proc_status_mib(pid: int, field: str) -> float:
    """VmRSS (resident now) or VmHWM (peak resident) of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After the command name: state is field 3, utime 14 and stime 15 (1-based), in clock ticks.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def p50_p99(values: list[float], unit: float = 1.0, suffix: str = "s") -> str:
    if not values:
        return "n/a"
    scaled = [value / unit for value in values]
    return f"p50 {statistics.median(scaled):8.3f}{suffix}  p99 {percentile(scaled, 0.99):8.3f}{suffix}"


def load() -> str:
    """The machine's load averages, to print next to figures a shared machine makes noisy."""
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


@dataclass(frozen=True)
class RequestCount:
    operator: float
    total: float
    by_kind: dict[str, float]
    """Every client's requests by ``VERB resource``."""

    def busiest_since(self, before: RequestCount, count: int = 8) -> str:
        """The request kinds that grew most since ``before``, e.g. ``GET configmaps 120``."""
        grown = {key: value - before.by_kind.get(key, 0.0) for key, value in self.by_kind.items()}
        top = sorted(grown.items(), key=lambda item: -item[1])[:count]
        return ", ".join(f"{key} {value:.0f}" for key, value in top if value > 0)


def request_counts(api: client.ApiClient) -> RequestCount:
    """Requests served so far: the operator's share (see the module's docstring) and all of them."""
    method, url, headers, _, _ = api.param_serialize("GET", "/metrics", auth_settings=["BearerToken"])
    response = api.call_api(method, url, header_params=headers)
    response.read()
    operator = total = 0.0
    by_kind: dict[str, float] = {}
    for line in response.data.decode().splitlines():
        match = _SAMPLE.match(line)
        if match is None:
            continue
        labels = dict(_LABEL.findall(match["labels"]))
        value = float(match["value"])
        total += value
        resource, verb = labels.get("resource", ""), labels.get("verb", "")
        key = f"{verb} {resource}{'/' + labels['subresource'] if labels.get('subresource') else ''}"
        by_kind[key] = by_kind.get(key, 0.0) + value
        if resource in OPERATOR_RESOURCES or verb in OPERATOR_ONLY_VERBS.get(resource, frozenset()):
            operator += value
    return RequestCount(operator, total, by_kind)
