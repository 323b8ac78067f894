"""The local node runs real commands for real Jobs, with real volumes, env and RBAC."""

from __future__ import annotations

import textwrap
import time
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from feast_lineage.devcluster.cluster import DevCluster
from tests.cluster_helpers import wait_until

pytestmark = pytest.mark.cluster


def _job(name: str, script: str, **pod_spec: Any) -> dict[str, Any]:
    container = {
        "name": "main",
        "image": "python:3.11-slim",
        "command": ["python", "-c", textwrap.dedent(script)],
        **pod_spec.pop("container", {}),
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {"spec": {"restartPolicy": "Never", "containers": [container], **pod_spec}},
        },
    }


def _job_condition(batch: client.BatchV1Api, name: str, namespace: str) -> str | None:
    job = batch.read_namespaced_job_status(name, namespace)
    for condition in job.status.conditions or []:
        if condition.type in ("Complete", "Failed") and condition.status == "True":
            return str(condition.type)
    return None


def _terminated(core: client.CoreV1Api, job_name: str, namespace: str) -> client.V1ContainerStateTerminated:
    pods = core.list_namespaced_pod(namespace, label_selector=f"job-name={job_name}").items
    assert len(pods) == 1, [p.metadata.name for p in pods]
    state = pods[0].status.container_statuses[0].state
    assert state.terminated is not None, state
    return state.terminated


def test_job_with_configmap_volume_and_secret_env_completes(api: client.ApiClient, namespace: str) -> None:
    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "settings"}, "data": {"greeting.txt": "hello"}})
    core.create_namespaced_secret(namespace, {"metadata": {"name": "creds"}, "stringData": {"token": "s3cret"}})
    job = _job(
        "reads-config",
        """
        import os, pathlib
        greeting = pathlib.Path("/etc/settings/greeting.txt").read_text()
        assert os.environ["TOKEN"] == "s3cret", os.environ.get("TOKEN")
        assert os.environ["POD_NAMESPACE"] == os.environ["EXPECTED_NS"]
        pathlib.Path("/dev/termination-log").write_text(f"{greeting} from {os.getcwd()}")
        """,
        volumes=[{"name": "settings", "configMap": {"name": "settings"}}],
        container={
            "workingDir": "/work/job",
            "volumeMounts": [{"name": "settings", "mountPath": "/etc/settings", "readOnly": True}],
            "env": [
                {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
                {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                {"name": "EXPECTED_NS", "value": namespace},
            ],
        },
    )
    batch.create_namespaced_job(namespace, job)
    assert wait_until(lambda: _job_condition(batch, "reads-config", namespace), 60, "Job finished") == "Complete"
    terminated = _terminated(core, "reads-config", namespace)
    assert terminated.exit_code == 0
    assert terminated.reason == "Completed"
    assert terminated.message == "hello from /work/job"


def test_failing_command_fails_the_job_with_exit_code_and_message(api: client.ApiClient, namespace: str) -> None:
    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    job = _job(
        "fails",
        """
        import pathlib, sys
        pathlib.Path("/dev/termination-log").write_text("feature repo did not import")
        sys.exit(3)
        """,
    )
    batch.create_namespaced_job(namespace, job)
    assert wait_until(lambda: _job_condition(batch, "fails", namespace), 60, "Job finished") == "Failed"
    terminated = _terminated(core, "fails", namespace)
    assert terminated.exit_code == 3
    assert terminated.reason == "Error"
    assert terminated.message == "feature repo did not import"


def test_missing_secret_keeps_the_pod_waiting_with_a_config_error(api: client.ApiClient, namespace: str) -> None:
    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    job = _job(
        "needs-secret",
        "print('ran')",
        container={"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k"}}}]},
    )
    batch.create_namespaced_job(namespace, job)

    def waiting_reason() -> str | None:
        pods = core.list_namespaced_pod(namespace, label_selector="job-name=needs-secret").items
        statuses = pods[0].status.container_statuses if pods else None
        waiting = statuses[0].state.waiting if statuses else None
        return f"{waiting.reason}: {waiting.message}" if waiting else None

    reason = wait_until(waiting_reason, 30, "the pod to report its config error")
    assert reason == 'CreateContainerConfigError: secret "absent" not found'
    # Creating the Secret lets the same pod start, as on a real node.
    core.create_namespaced_secret(namespace, {"metadata": {"name": "absent"}, "stringData": {"k": "v"}})
    assert wait_until(lambda: _job_condition(batch, "needs-secret", namespace), 60, "Job finished") == "Complete"


def test_rbac_applies_to_what_a_pod_does(api: client.ApiClient, namespace: str) -> None:
    core, batch, rbac = client.CoreV1Api(api), client.BatchV1Api(api), client.RbacAuthorizationV1Api(api)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "reader"}})
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "configmap-reader"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "reader-reads-configmaps"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "configmap-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
        },
    )
    job = _job(
        "lists-things",
        """
        import os, pathlib
        from kubernetes import client, config
        from kubernetes.client.exceptions import ApiException
        config.load_incluster_config()
        core = client.CoreV1Api()
        ns = pathlib.Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace").read_text()
        configmaps = len(core.list_namespaced_config_map(ns).items)
        try:
            core.list_namespaced_secret(ns)
            secrets = "allowed"
        except ApiException as error:
            secrets = str(error.status)
        pathlib.Path("/dev/termination-log").write_text(f"configmaps={configmaps} secrets={secrets}")
        """,
        serviceAccountName="reader",
    )
    batch.create_namespaced_job(namespace, job)
    assert wait_until(lambda: _job_condition(batch, "lists-things", namespace), 60, "Job finished") == "Complete"
    message = _terminated(core, "lists-things", namespace).message
    # kube-root-ca.crt is always there; listing Secrets is forbidden to this ServiceAccount.
    assert message.startswith("configmaps=") and not message.startswith("configmaps=0")
    assert message.endswith("secrets=403")


def test_deleted_running_pod_goes_away(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    pod = {
        "metadata": {"name": "sleeper"},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 5,
            "containers": [{"name": "main", "image": "busybox", "command": ["sleep", "300"]}],
        },
    }
    created = time.monotonic()
    core.create_namespaced_pod(namespace, pod)
    wait_until(lambda: core.read_namespaced_pod("sleeper", namespace).status.phase == "Running", 30, "Running")
    print(f"pod create -> Running: {time.monotonic() - created:.2f}s")
    core.delete_namespaced_pod("sleeper", namespace)

    def gone() -> bool:
        try:
            core.read_namespaced_pod("sleeper", namespace)
        except ApiException as error:
            return bool(error.status == 404)
        return False

    wait_until(gone, 20, "the deleted pod to disappear")


def test_a_volume_mounted_over_another_volumes_source_does_not_hide_it(
    api: client.ApiClient, namespace: str, dev_cluster: DevCluster
) -> None:
    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "cfg"}, "data": {"k": "v"}})
    # The node keeps volume contents under its state directory; hide that whole tree first.
    over_state = str(dev_cluster.directory.parent)
    job = _job(
        "tmp-first",
        f"""
        import pathlib
        pathlib.Path("{over_state}/scratch").write_text("x")
        pathlib.Path("/dev/termination-log").write_text(pathlib.Path("/etc/cfg/k").read_text())
        """,
        volumes=[{"name": "scratch", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "cfg"}}],
        container={
            "volumeMounts": [
                {"name": "scratch", "mountPath": over_state},
                {"name": "cfg", "mountPath": "/etc/cfg"},
            ],
        },
    )
    batch.create_namespaced_job(namespace, job)
    assert wait_until(lambda: _job_condition(batch, "tmp-first", namespace), 60, "Job finished") == "Complete"
    assert _terminated(core, "tmp-first", namespace).message == "v"
