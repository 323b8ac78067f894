"""After uninstall: remove the operator's finalizer from every project and run, once the operator is gone.

The operator holds each FeatureStoreProject (through Kopf) and each unsettled MaterializationJob
(itself) with the finalizer ``featurelineage.io/finalizer``. Without a running operator nobody removes it,
so deleting such an object - or its CRD, which waits for every object - would never finish. The
chart runs this as a post-delete hook (``python -m feast_lineage.install.cleanup``); it first waits
until the operator's pods are gone (a running operator would put the finalizer straight back), then
removes only that finalizer with a JSON patch that tests it is still where it was read. The objects
stay; a reinstalled operator adds the finalizer again. Last, it deletes the webhook certificate
Secret the operator made for itself, which Helm does not know of.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from feast_lineage.api import FEATURE_STORE_PROJECT_PLURAL, GROUP, MATERIALIZATION_JOB_PLURAL, VERSION
from feast_lineage.controller.kube import new_api_client

log = logging.getLogger("feast_lineage.install.cleanup")

FINALIZER = f"{GROUP}/finalizer"
"""The finalizer the operator configures Kopf with (controller/wiring.py) and keeps on runs itself
(controller/run_watch.py)."""
PLURALS = (MATERIALIZATION_JOB_PLURAL, FEATURE_STORE_PROJECT_PLURAL)


def finalizer_patch(obj: dict[str, Any]) -> list[dict[str, Any]] | None:
    """A JSON patch removing the operator's finalizer, failing if the list changed since it was read."""
    finalizers = list((obj.get("metadata") or {}).get("finalizers") or [])
    if FINALIZER not in finalizers:
        return None
    index = finalizers.index(FINALIZER)
    path = f"/metadata/finalizers/{index}"
    return [{"op": "test", "path": path, "value": FINALIZER}, {"op": "remove", "path": path}]


def operator_pods(core: client.CoreV1Api, namespace: str, selector: str) -> list[str]:
    return [pod.metadata.name for pod in core.list_namespaced_pod(namespace, label_selector=selector).items]


def wait_until_gone(core: client.CoreV1Api, namespace: str, selector: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        pods = operator_pods(core, namespace, selector)
        if not pods:
            return True
        if time.monotonic() > deadline:
            log.error("the operator's pods are still there after %.0fs: %s", timeout, ", ".join(pods))
            return False
        time.sleep(2)


def _list(custom: client.CustomObjectsApi, plural: str, namespace: str | None) -> list[dict[str, Any]]:
    try:
        if namespace is None:
            response = custom.list_cluster_custom_object(GROUP, VERSION, plural, _preload_content=False)
        else:
            response = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, plural, _preload_content=False)
    except ApiException as error:
        if error.status == 404:  # the CRD is not installed (or already gone): nothing holds a finalizer
            return []
        raise
    return list(json.loads(response.data).get("items") or [])


def release_finalizers(custom: client.CustomObjectsApi, namespaces: list[str], attempts: int = 5) -> list[str]:
    """Remove the finalizer from every project and run in ``namespaces`` (all when empty).

    Returns ``namespace/plural/name`` of each object released. An object changed meanwhile is read
    again; one deleted meanwhile is done.
    """
    released = []
    scopes: list[str | None] = list(namespaces) or [None]
    for namespace in scopes:
        for plural in PLURALS:
            for _ in range(attempts):
                pending = 0
                for obj in _list(custom, plural, namespace):
                    patch = finalizer_patch(obj)
                    if patch is None:
                        continue
                    meta = obj["metadata"]
                    try:
                        custom.patch_namespaced_custom_object(
                            GROUP,
                            VERSION,
                            meta["namespace"],
                            plural,
                            meta["name"],
                            patch,
                            _content_type="application/json-patch+json",
                        )
                        released.append(f"{meta['namespace']}/{plural}/{meta['name']}")
                    except ApiException as error:
                        if error.status == 404:
                            continue
                        if error.status in (409, 422):  # the finalizers changed since the list: again
                            pending += 1
                            continue
                        raise
                if not pending:
                    break
            else:
                raise RuntimeError(f"finalizers of {plural} in {namespace or 'all namespaces'} kept changing")
    return released


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m feast_lineage.install.cleanup", description=__doc__)
    parser.add_argument("--operator-namespace", required=True)
    parser.add_argument("--operator-selector", required=True, help="label selector of the operator's pods")
    parser.add_argument("--namespace", action="append", default=[], help="watched namespace (repeatable); all")
    parser.add_argument("--timeout-seconds", type=float, default=120)
    parser.add_argument("--delete-secret", help="NAME of the operator's own webhook certificate Secret, to delete")
    parser.add_argument("--delete-lease", help="NAME of the replicas' leader election Lease, to delete")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    api = new_api_client()
    if not wait_until_gone(
        client.CoreV1Api(api), args.operator_namespace, args.operator_selector, args.timeout_seconds
    ):
        return 1
    released = release_finalizers(client.CustomObjectsApi(api), args.namespace)
    for name in released:
        log.info("removed %s from %s", FINALIZER, name)
    log.info("%d objects released; no finalizer of the operator is left", len(released))
    if args.delete_secret:
        secrets = client.CoreV1Api(api).delete_namespaced_secret
        delete_made_by_operator(secrets, "webhook certificate Secret", args.operator_namespace, args.delete_secret)
    if args.delete_lease:
        leases = client.CoordinationV1Api(api).delete_namespaced_lease
        delete_made_by_operator(leases, "leader election Lease", args.operator_namespace, args.delete_lease)
    return 0


def delete_made_by_operator(delete: Callable[[str, str], object], what: str, namespace: str, name: str) -> None:
    """Delete an object the operator made (Helm did not, so Helm would leave it); gone already is fine."""
    try:
        delete(name, namespace)
        log.info("deleted the %s %s/%s", what, namespace, name)
    except ApiException as error:
        if error.status != 404:
            raise


if __name__ == "__main__":
    sys.exit(main())
