"""``feast-lineage rerun``: run a MaterializationJob again, as a new object that links to the old one.

A run's spec is immutable and a run never deletes itself (a GitOps tool would create it
again), so a re-run is a new object: the same project, feature views and window. An
Incremental run's window was fixed when its Job started; the re-run is a Range run over
exactly that window, so it materializes what the first one was meant to, even after later
runs moved the project's watermark.
"""

from __future__ import annotations

import copy
from typing import Any

from feast_lineage.api import GROUP, MATERIALIZATION_JOB_KIND, MATERIALIZATION_JOB_PLURAL, VERSION
from feast_lineage.controller.bounded_client import BoundedApiClient
from feast_lineage.controller.settings import ApiTimeouts
from feast_lineage.domain.labels import ANNOTATION_RERUN_OF

Obj = dict[str, Any]
RERUN_AGENT = "feast-lineage-rerun"
"""The field manager of the runs this command creates (a person's, not the operator's)."""


def rerun_manifest(old: Obj, new_name: str) -> Obj:
    """The MaterializationJob that runs ``old`` again under ``new_name``."""
    spec = copy.deepcopy(old["spec"])
    window = (old.get("status") or {}).get("window") or {}
    if spec.get("mode", "Incremental") == "Incremental" and window.get("start") and window.get("end"):
        spec.update({"mode": "Range", "startTime": window["start"], "endTime": window["end"]})
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": MATERIALIZATION_JOB_KIND,
        "metadata": {"name": new_name, "annotations": {ANNOTATION_RERUN_OF: old["metadata"]["name"]}},
        "spec": spec,
    }


def rerun_name(old_name: str, taken: set[str]) -> str:
    """``<old>-rerun-<n>``, the first n not taken (names stay within 253 characters)."""
    base = old_name[:240]
    n = 1
    while f"{base}-rerun-{n}" in taken:
        n += 1
    return f"{base}-rerun-{n}"


def rerun(namespace: str, name: str, new_name: str | None, timeouts: ApiTimeouts) -> str:
    """Create the re-run in the cluster of the current kubeconfig; returns its name. Each request is
    bounded as the operator's are (a stalled API server fails the command, naming the request,
    instead of holding the terminal)."""
    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_kube_config(client_configuration=configuration)
    custom = client.CustomObjectsApi(BoundedApiClient(configuration, timeouts, agent=RERUN_AGENT))
    old = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, MATERIALIZATION_JOB_PLURAL, name)
    if new_name is None:
        existing = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, MATERIALIZATION_JOB_PLURAL)
        new_name = rerun_name(name, {item["metadata"]["name"] for item in existing.get("items") or []})
    custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, MATERIALIZATION_JOB_PLURAL, rerun_manifest(dict(old), new_name)
    )
    return new_name
