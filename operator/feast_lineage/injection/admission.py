"""AdmissionReview in, AdmissionReview out: the pod-injection webhook's request handling.

The namespace is taken from the admission request, never from the object; projects are
looked up only in that namespace, from memory. The only API call is the namespace's Pod
Security level, cached for a minute, so a slow API server delays at most one pod a minute
per namespace, within the webhook's own timeout.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from feast_lineage.controller import metrics
from feast_lineage.domain.injection import POD_SECURITY_ENFORCE_LABEL, InjectionDecision, decide_injection
from feast_lineage.injection.targets import InjectionTargets

log = logging.getLogger(__name__)

WARNING_PREFIX = "feast-lineage: "
_WARNING_LIMIT = 240


class NamespaceLevels:
    """Pod Security enforce level of each namespace, read through a short-lived cache."""

    TTL_SECONDS = 60.0

    def __init__(self, read_labels: Callable[[str], dict[str, str] | None]) -> None:
        self._read_labels = read_labels
        self._cache: dict[str, tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    def level(self, namespace: str) -> str | None:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(namespace)
        if cached is not None and now - cached[0] < self.TTL_SECONDS:
            return cached[1]
        try:
            found = self._read_labels(namespace)
        except Exception as error:  # an unreadable namespace must not block the pod
            log.warning("could not read namespace %s: %s", namespace, error)
            found = None
        level = (found or {}).get(POD_SECURITY_ENFORCE_LABEL)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[namespace] = (now, level)
        return level


def _warning(text: str) -> str:
    text = WARNING_PREFIX + " ".join(text.split())
    return text if len(text) <= _WARNING_LIMIT else text[: _WARNING_LIMIT - 3] + "..."


class PodInjection:
    """Handles AdmissionReviews of pod creation."""

    def __init__(self, targets: InjectionTargets, levels: NamespaceLevels, default_tracking_uri: str | None) -> None:
        self.targets = targets
        self.levels = levels
        self.default_tracking_uri = default_tracking_uri

    def decide(self, pod: dict[str, Any], namespace: str) -> InjectionDecision:
        return decide_injection(
            pod,
            namespace,
            self.targets.in_namespace(namespace),
            pod_security_level=self.levels.level(namespace),
            default_tracking_uri=self.default_tracking_uri,
        )

    def review(self, review: dict[str, Any]) -> dict[str, Any]:
        request = review.get("request") or {}
        response: dict[str, Any] = {"uid": request.get("uid", ""), "allowed": True}
        pod = request.get("object") or {}
        namespace = str(request.get("namespace") or "")
        if request.get("kind", {}).get("kind") != "Pod" or request.get("operation") != "CREATE" or not namespace:
            return _envelope(review, response)
        decision = self.decide(pod, namespace)
        if decision.already_injected:
            metrics.INJECTIONS.labels("already-injected").inc()
        elif decision.skipped is not None:
            metrics.INJECTIONS.labels("skipped").inc()
            response["warnings"] = [_warning(f"not injected: {decision.skipped}")]
        else:
            metrics.INJECTIONS.labels("injected").inc()
            response["patchType"] = "JSONPatch"
            response["patch"] = base64.b64encode(json.dumps(decision.patch).encode()).decode()
            if decision.warnings:
                response["warnings"] = [_warning(w) for w in decision.warnings]
        return _envelope(review, response)


def _envelope(review: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": review.get("apiVersion", "admission.k8s.io/v1"),
        "kind": "AdmissionReview",
        "response": response,
    }
