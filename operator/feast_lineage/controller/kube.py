"""Thin helpers over the Kubernetes client: plain dicts in and out, 404 as None, 409 as 'exists'."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from feast_lineage.api import GROUP, VERSION, StatusModel
from feast_lineage.controller.bounded_client import BoundedApiClient
from feast_lineage.controller.rest import BatchV1, CoreV1, CustomObjects, Rest
from feast_lineage.controller.settings import ApiTimeouts
from feast_lineage.domain.status_owners import owned_part, stored_status
from feast_lineage.redaction import KNOWN

Obj = dict[str, Any]
STATUS_WRITE_ATTEMPTS = 5
# Every thread that calls the API server at once (Kopf's workers, the run scheduler's, the audit
# deliveries', the pod monitor, the Lease) keeps a connection: the client's default pool (5 per core)
# is smaller, so a burst discarded connections and paid a new TLS handshake for most requests.
CONNECTION_POOL_SIZE = 32


class StatusConflict(Exception):
    """Another writer changed status fields this one owns since it read them: recompute from a fresh read."""


def new_api_client(timeouts: ApiTimeouts | None = None) -> client.ApiClient:
    """From the kubeconfig when there is one, else the in-cluster service account; every request
    bounded by ``timeouts`` (the defaults when None)."""
    try:
        config.load_kube_config()
    except config.ConfigException:
        config.load_incluster_config()
    configuration = client.Configuration.get_default_copy()
    configuration.connection_pool_maxsize = CONNECTION_POOL_SIZE
    return BoundedApiClient(configuration, timeouts or ApiTimeouts())


def read(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Obj | None:
    """Call a read method and return the object as a dict, or None when it does not exist."""
    try:
        response = call(*args, _preload_content=False, **kwargs)
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    return dict(json.loads(response.data))


def create(call: Callable[..., Any], *args: Any) -> bool:
    """Create; False when it already exists (a deterministic name made it earlier)."""
    try:
        call(*args, _preload_content=False)
    except ApiException as error:
        if error.status == 409:
            return False
        raise
    return True


class OwnershipConflict(Exception):
    """An object the operator would use or change has the right name but is not its own."""


def controlled_by(obj: Obj, uid: str) -> bool:
    """Whether ``obj``'s controller owner reference names ``uid``: names and labels can be forged, UIDs not."""
    return any(
        ref.get("controller") and ref.get("uid") == uid
        for ref in (obj.get("metadata") or {}).get("ownerReferences") or []
    )


class Kube:
    """The API groups the operator uses, sharing one client (by path: see :mod:`.rest`)."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.rest = Rest(api)
        self.core = CoreV1(self.rest)
        self.batch = BatchV1(self.rest)
        self.custom = CustomObjects(self.rest)

    def write_status(self, plural: str, body: Obj, status: StatusModel, owned: frozenset[str]) -> bool:
        """Store ``status``'s ``owned`` top-level fields whole, and every other field as ``body`` had it.

        The status subresource is replaced (PUT) with the resourceVersion that was read, so the write
        is exactly the typed model - a nested field it leaves out is gone, where a merge patch would
        keep the old one - and it can never undo another writer's change it has not seen: the API
        server answers 409 instead. Then the fields this writer does not own (the pod monitor's
        ``injection``, Kopf's metadata) are taken from a fresh read and the write is tried again;
        if a field it owns changed meanwhile, :class:`StatusConflict` asks for a new pass.
        Every string of the stored status, the fields of other writers included, is redacted with the
        secret values the operator knows: a value that reached status before is gone with the next write.
        Returns whether anything was written.
        """
        meta = body["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        read = owned_part(body.get("status"), owned)
        current = body
        for _ in range(STATUS_WRITE_ATTEMPTS):
            stored = KNOWN.redact_data(stored_status(current.get("status"), status, owned))
            if stored == (current.get("status") or {}):
                return False
            try:
                self.custom.replace_namespaced_custom_object_status(
                    GROUP, VERSION, namespace, plural, name, {**current, "status": stored}, _preload_content=False
                )
                return True
            except ApiException as error:
                if error.status == 404:  # deleted meanwhile
                    return False
                if error.status != 409:
                    raise
            fresh = self.get_custom(plural, namespace, name)
            if fresh is None:
                return False
            if owned_part(fresh.get("status"), owned) != read:
                raise StatusConflict(f"status of {plural}/{namespace}/{name} changed since it was read")
            current = fresh
        raise StatusConflict(f"status of {plural}/{namespace}/{name} kept changing")

    def create_job(self, namespace: str, manifest: Obj) -> bool:
        """Create a Job; False when it already exists (a deterministic name made it earlier)."""
        try:
            # The answer is not decoded: nobody reads it (a Job's is some 5 KiB).
            self.batch.create_namespaced_job(namespace, manifest)
        except ApiException as error:
            if error.status == 409:
                return False
            raise
        return True

    def create_event(self, namespace: str, event: Obj) -> None:
        self.core.create_namespaced_event(namespace, event)

    def get_custom(self, plural: str, namespace: str, name: str) -> Obj | None:
        return read(self.custom.get_namespaced_custom_object, GROUP, VERSION, namespace, plural, name)

    def list_json(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> list[Obj]:
        response = call(*args, _preload_content=False, **kwargs)
        return list(json.loads(response.data).get("items", []))

    def owned_job(self, name: str, namespace: str, owner_uid: str, owner: str) -> Obj | None:
        """The Job ``name`` if it exists and ``owner_uid`` controls it; :class:`OwnershipConflict` if another does."""
        job = read(self.batch.read_namespaced_job, name, namespace)
        if job is not None and not controlled_by(job, owner_uid):
            raise OwnershipConflict(f'Job "{name}" exists and is not controlled by {owner}; delete or rename it')
        return job

    def job_pods(self, job: Obj) -> list[Obj]:
        """The pods the Job controls: a pod someone labelled job-name=<job> is not one of them."""
        meta = job["metadata"]
        pods = self.list_json(
            self.core.list_namespaced_pod, meta["namespace"], label_selector=f"job-name={meta['name']}"
        )
        return [pod for pod in pods if controlled_by(pod, meta["uid"])]

    def apply_config_map(self, manifest: Obj) -> bool:
        """Create or update a ConfigMap the operator owns; True when it changed. One that exists
        without the manifest's controller owner is never touched: :class:`OwnershipConflict`."""
        meta = manifest["metadata"]
        current = read(self.core.read_namespaced_config_map, meta["name"], meta["namespace"])
        if current is None:
            return create(self.core.create_namespaced_config_map, meta["namespace"], manifest)
        owner_uid = next(ref["uid"] for ref in meta["ownerReferences"] if ref.get("controller"))
        if not controlled_by(current, owner_uid):
            raise OwnershipConflict(
                f'ConfigMap "{meta["name"]}" exists and is not controlled by this FeatureStoreProject; '
                "delete or rename it"
            )
        if current.get("data") == manifest.get("data") and (current["metadata"].get("labels") or {}) == meta.get(
            "labels", {}
        ):
            return False
        self.core.replace_namespaced_config_map(
            meta["name"],
            meta["namespace"],
            {**manifest, "metadata": {**meta, "resourceVersion": current["metadata"]["resourceVersion"]}},
        )
        return True
