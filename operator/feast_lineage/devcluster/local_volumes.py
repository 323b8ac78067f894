"""A local volume provisioner: PersistentVolumeClaims backed by directories of the node.

What Rancher's local-path provisioner does, for one node: a default StorageClass
``local-path`` (``Immediate`` binding, ``Delete`` reclaim); for each pending claim of
that class, a ``hostPath`` PersistentVolume on a new directory under the node's state
directory, pre-bound to the claim (the PV controller of kube-controller-manager
completes the binding); when a released volume's policy is ``Delete``, its directory
and the PersistentVolume go. Pods mount a bound claim's directory
(:meth:`feast_lineage.devcluster.pod_files.PodFiles.volume_dirs`), so data outlives
the pod that wrote it.
"""

from __future__ import annotations

import logging
import shutil
import threading
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from feast_lineage.devcluster.watching import start_watch

log = logging.getLogger("local-node")

STORAGE_CLASS = "local-path"
PROVISIONER = "local-node.featurelineage.io/local-path"


class LocalVolumes:
    def __init__(self, api: client.ApiClient, root: Path) -> None:
        self.core = client.CoreV1Api(api)
        self.storage = client.StorageV1Api(api)
        self.root = root
        self.stopping = threading.Event()

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self._ensure_storage_class()
        start_watch("claims", self.core.list_persistent_volume_claim_for_all_namespaces, self._on_claim, self.stopping)
        start_watch("volumes", self.core.list_persistent_volume, self._on_volume, self.stopping)

    def _ensure_storage_class(self) -> None:
        body = {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {
                "name": STORAGE_CLASS,
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            },
            "provisioner": PROVISIONER,
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "Immediate",
        }
        try:
            self.storage.create_storage_class(body)
        except ApiException as error:
            if error.status != 409:
                raise

    def _on_claim(self, kind: str, claim: dict[str, Any]) -> None:
        spec, meta = claim["spec"], claim["metadata"]
        if kind == "DELETED" or spec.get("volumeName") or spec.get("storageClassName") != STORAGE_CLASS:
            return
        if claim.get("status", {}).get("phase", "Pending") != "Pending" or meta.get("deletionTimestamp"):
            return
        name = f"pvc-{meta['uid']}"
        directory = self.root / name
        directory.mkdir(parents=True, exist_ok=True)
        # What kubelet would do with an emptyDir: writable for whichever user the pod runs as.
        directory.chmod(0o777)
        volume = {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": name, "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER}},
            "spec": {
                "capacity": {"storage": spec.get("resources", {}).get("requests", {}).get("storage", "1Gi")},
                "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Delete",
                "storageClassName": STORAGE_CLASS,
                "volumeMode": spec.get("volumeMode", "Filesystem"),
                "hostPath": {"path": str(directory), "type": "Directory"},
                "claimRef": {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "namespace": meta["namespace"],
                    "name": meta["name"],
                    "uid": meta["uid"],
                },
            },
        }
        try:
            self.core.create_persistent_volume(volume)
            log.info("provisioned %s for claim %s/%s", name, meta["namespace"], meta["name"])
        except ApiException as error:
            if error.status != 409:
                log.warning("provisioning %s failed: %s", name, error.reason)

    def _on_volume(self, kind: str, volume: dict[str, Any]) -> None:
        annotations = volume["metadata"].get("annotations") or {}
        if kind == "DELETED" or annotations.get("pv.kubernetes.io/provisioned-by") != PROVISIONER:
            return
        if volume.get("status", {}).get("phase") != "Released":
            return
        if volume["spec"].get("persistentVolumeReclaimPolicy") != "Delete":
            return
        path = Path(volume["spec"]["hostPath"]["path"])
        if path.parent == self.root:
            shutil.rmtree(path, ignore_errors=True)
        try:
            self.core.delete_persistent_volume(volume["metadata"]["name"])
        except ApiException as error:
            if error.status != 404:
                log.warning("deleting %s failed: %s", volume["metadata"]["name"], error.reason)
