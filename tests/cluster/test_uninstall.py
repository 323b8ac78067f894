"""Uninstall: without the operator, its finalizer makes projects undeletable; the chart's post-delete
cleanup (run here as its Job would run it, with the hook's ServiceAccount and RBAC) releases them.

The operator and the cleanup run as processes with the chart's arguments and tokens, not by `helm
uninstall`: the test takes the cleanup's steps one at a time (an operator pod still there, then gone,
then a second run), which Helm runs all at once. `helm uninstall` with its hook, start to end, is
tests/cluster/test_helm_install.py."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from feast_lineage.devcluster.cluster import DevCluster
from feast_lineage.devcluster.mlflow_server import MlflowServer
from feast_lineage.install.cleanup import FINALIZER
from tests.cluster.projects import Projects, project_manifest
from tests.cluster_helpers import OperatorProcess, operators_paused, wait_until
from tests.conftest import REPO_ROOT
from tests.install_helpers import ChartRbacInstall, delete, server_side_apply, token_kubeconfig

pytestmark = pytest.mark.cluster

GROUP, VERSION = "featurelineage.io", "v1alpha1"


def finalizers(custom: client.CustomObjectsApi, namespace: str, plural: str, name: str) -> list[str] | None:
    try:
        obj = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
    except client.exceptions.ApiException as error:
        if error.status == 404:
            return None
        raise
    return list(obj["metadata"].get("finalizers") or [])


def cleanup_container(install: ChartRbacInstall) -> dict[str, Any]:
    job = next(o for o in install.rendered if o["kind"] == "Job" and o["metadata"]["name"].endswith("-cleanup"))
    container: dict[str, Any] = job["spec"]["template"]["spec"]["containers"][0]
    return container


def run_cleanup(kubeconfig: Path, install: ChartRbacInstall, *args: str) -> tuple[int, str]:
    """The hook's command and arguments, as a process with the hook ServiceAccount's token."""
    container = cleanup_container(install)
    assert container["command"] == ["python", "-m", "feast_lineage.install.cleanup"]
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "NO_PROXY": "127.0.0.1,localhost"}
    result = subprocess.run(
        [sys.executable, "-m", "feast_lineage.install.cleanup", *container["args"], *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    return result.returncode, result.stdout + result.stderr


def has_finalizer(custom: client.CustomObjectsApi, namespace: str, plural: str, name: str) -> bool:
    return FINALIZER in (finalizers(custom, namespace, plural, name) or [])


def test_cleanup_releases_every_finalizer_once_the_operator_is_gone(
    dev_cluster: DevCluster,
    api: client.ApiClient,
    crds_installed: None,
    mlflow_server: MlflowServer,
    namespace: str,
    tmp_path: Path,
) -> None:
    suffix = uuid.uuid4().hex[:5]
    operator = OperatorProcess(dev_cluster.kubeconfig, mlflow_server.url, tmp_path / "operator")
    install = ChartRbacInstall(
        dev_cluster.binaries.kubectl,
        dev_cluster.kubeconfig,
        release=f"uninstall-{suffix}",
        namespace=f"feast-lineage-uninstall-{suffix}",
        values=(
            f"webhook.url=https://127.0.0.1:{operator.webhook_port}",
            f"webhook.port={operator.webhook_port}",
            f"livenessPort={operator.liveness_port}",
            f"metrics.port={operator.metrics_port}",
            f"resyncSeconds={OperatorProcess.RESYNC_SECONDS}",
            # Test projects keep Feast's files on hostPath volumes: an administrator's choice.
            "policy.runnerVolumeTypes={configMap,secret,emptyDir,persistentVolumeClaim,hostPath}",
        ),
    )
    custom = client.CustomObjectsApi(api)
    with operators_paused(api):
        install.apply()
        hook_objects = [o for o in install.rendered if o["kind"] != "Job" and "cleanup" in o["metadata"]["name"]]
        hook_objects = [o for o in hook_objects if o["kind"] != "Pod"]
        kinds = {o["kind"] for o in hook_objects}
        assert kinds == {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
        result = server_side_apply(dev_cluster.binaries.kubectl, dev_cluster.kubeconfig, hook_objects)
        assert result.returncode == 0, result.stderr
        try:
            (tmp_path / "operator").mkdir()
            operator.kubeconfig = install.kubeconfig(api, tmp_path / "operator" / "kubeconfig")
            operator.run_args = install.run_args
            operator.start()
            try:
                # A project (its repo is missing: Stalled, which is enough) and a run of it, both held.
                Projects(api, namespace).create(
                    project_manifest("drivers", tmp_path / "data", {"configMap": {"name": "missing"}})
                )
                run: dict[str, Any] = {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "MaterializationJob",
                    "metadata": {"name": "backfill"},
                    "spec": {"projectRef": {"name": "drivers"}, "mode": "Incremental"},
                }
                custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "materializationjobs", run)
                for plural, name in (("featurestoreprojects", "drivers"), ("materializationjobs", "backfill")):
                    held = functools.partial(has_finalizer, custom, namespace, plural, name)
                    wait_until(held, 60, f"the operator's finalizer on {plural}/{name}")
                made = next(a for a in cleanup_container(install)["args"] if a.startswith("--delete-secret="))
                secret_name = made.split("=", 1)[1]
                client.CoreV1Api(api).read_namespaced_secret(secret_name, install.namespace)  # the operator made it
            finally:
                operator.stop()

            # The operator is gone: a deleted project waits for it forever.
            custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "featurestoreprojects", "drivers")
            assert finalizers(custom, namespace, "featurestoreprojects", "drivers") == [FINALIZER]

            account = cleanup_job_account(install)
            cleanup_config = token_kubeconfig(
                api, dev_cluster.kubeconfig, install.namespace, account, tmp_path / "cleanup.kubeconfig"
            )

            # While an operator pod is still there, nothing is touched.
            core = client.CoreV1Api(api)
            selector = next(a for a in cleanup_container(install)["args"] if a.startswith("--operator-selector="))
            labels = dict(item.split("=") for item in selector.split("=", 1)[1].split(","))
            pod = {
                "metadata": {"name": "operator-still-stopping", "labels": labels},
                "spec": {"containers": [{"name": "operator", "image": "none", "command": ["sleep", "600"]}]},
            }
            core.create_namespaced_pod(install.namespace, pod)
            code, output = run_cleanup(cleanup_config, install, "--timeout-seconds=3")
            assert code == 1 and "still there" in output, output
            assert finalizers(custom, namespace, "featurestoreprojects", "drivers") == [FINALIZER]
            core.delete_namespaced_pod("operator-still-stopping", install.namespace, grace_period_seconds=0)
            wait_until(lambda: not core.list_namespaced_pod(install.namespace).items, 60, "the pod to be gone")

            code, output = run_cleanup(cleanup_config, install)
            assert code == 0, output
            # Both of this test's objects (other tests' namespaces may still hold some of their own).
            for released in (f"{namespace}/featurestoreprojects/drivers", f"{namespace}/materializationjobs/backfill"):
                assert f"removed {FINALIZER} from {released}" in output, output
            wait_until(
                lambda: finalizers(custom, namespace, "featurestoreprojects", "drivers") is None,
                30,
                "the deleted project to go",
            )
            assert finalizers(custom, namespace, "materializationjobs", "backfill") == []
            assert "deleted the webhook certificate Secret" in output
            remaining = [s.metadata.name for s in core.list_namespaced_secret(install.namespace).items]
            assert secret_name not in remaining
            assert "deleted the leader election Lease" in output  # the operator made it, Helm would leave it
            # Run again, there is nothing left to do.
            code, output = run_cleanup(cleanup_config, install)
            assert code == 0 and "0 objects released" in output, output
        finally:
            delete(dev_cluster.binaries.kubectl, dev_cluster.kubeconfig, hook_objects, wait=False)
            install.delete()


def cleanup_job_account(install: ChartRbacInstall) -> str:
    job = next(o for o in install.rendered if o["kind"] == "Job" and o["metadata"]["name"].endswith("-cleanup"))
    return str(job["spec"]["template"]["spec"]["serviceAccountName"])


def readme_kubectl_recipe() -> str:
    text = (REPO_ROOT / "README.md").read_text()
    start = text.index("```sh\nkubectl get featurestoreprojects,materializationjobs -A")
    return text[start + len("```sh\n") : text.index("```", start + 5)]


def test_the_readmes_kubectl_recipe_releases_only_the_operators_finalizer(
    dev_cluster: DevCluster, api: client.ApiClient, crds_installed: None, namespace: str
) -> None:
    custom = client.CustomObjectsApi(api)
    held = {"alone": [FINALIZER], "behind-another": ["example.com/other", FINALIZER]}
    with operators_paused(api):  # no operator that would put the finalizer back
        for name, held_by in held.items():
            manifest = project_manifest(name, Path("/tmp/unused"), {"configMap": {"name": "repo"}})
            manifest["metadata"]["finalizers"] = held_by
            Projects(api, namespace).create(manifest)
            custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "featurestoreprojects", name)
        # As documented, limited to this test's namespace (other tests' objects are not its business).
        recipe = readme_kubectl_recipe().replace(" -A ", f" -n {namespace} ")
        env = {
            **os.environ,
            "KUBECONFIG": str(dev_cluster.kubeconfig),
            "PATH": f"{dev_cluster.binaries.kubectl.parent}:{os.environ['PATH']}",
        }
        result = subprocess.run(["bash", "-c", recipe], env=env, capture_output=True, text=True, timeout=120)
        gone = functools.partial(finalizers, custom, namespace, "featurestoreprojects", "alone")
        wait_until(lambda: gone() is None, 30, "the released project to go")
        # The test op refused the other one: its finalizers are as they were.
        assert "featurestoreproject.featurelineage.io/alone patched" in result.stdout, result.stdout
        assert "The request is invalid" in result.stderr, result.stderr
        assert finalizers(custom, namespace, "featurestoreprojects", "behind-another") == held["behind-another"]
        patch = [{"op": "remove", "path": "/metadata/finalizers"}]
        custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, "featurestoreprojects", "behind-another", patch,
            _content_type="application/json-patch+json",
        )  # fmt: skip
