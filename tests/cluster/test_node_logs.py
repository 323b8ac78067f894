"""`kubectl logs` on the local node: the API server reaches the node's log endpoint as it reaches a kubelet."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from feast_lineage.devcluster.cluster import DevCluster
from tests.cluster.projects import Projects, example_files, project_manifest, repo_configmap
from tests.cluster_helpers import wait_until
from tests.conftest import Kubectl
from tests.operator_pod import ChartOperator

pytestmark = pytest.mark.cluster


def _pod(name: str, script: str, restart: str = "Never") -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": restart,
            "containers": [
                {
                    "name": "main",
                    "image": "python:3.11",
                    "command": ["python", "-c", textwrap.dedent(script)],
                    "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
                }
            ],
            "volumes": [{"name": "scratch", "emptyDir": {}}],
        },
    }


def _phase(api: client.ApiClient, namespace: str, name: str) -> str:
    return str(client.CoreV1Api(api).read_namespaced_pod(name, namespace).status.phase)


def test_kubectl_logs_of_a_finished_pod(api: client.ApiClient, namespace: str, kubectl: Kubectl) -> None:
    script = """
        import sys
        print("hello from the pod", flush=True)
        print("and from its stderr", file=sys.stderr, flush=True)
        print("--- a line that looks like the node's own", flush=True)
    """
    client.CoreV1Api(api).create_namespaced_pod(namespace, _pod("hello", script))
    wait_until(lambda: _phase(api, namespace, "hello") == "Succeeded", 60, "pod hello Succeeded")
    logs = kubectl("logs", "-n", namespace, "hello")
    assert logs.stdout == ("hello from the pod\nand from its stderr\n--- a line that looks like the node's own\n"), (
        logs.stdout
    )
    assert kubectl("logs", "-n", namespace, "hello", "--tail=1").stdout == "--- a line that looks like the node's own\n"
    missing = kubectl("logs", "-n", namespace, "hello", "--previous", check=False)
    assert missing.returncode != 0 and "previous terminated container" in missing.stderr


def test_previous_and_follow_across_a_restart(api: client.ApiClient, namespace: str, kubectl: Kubectl) -> None:
    script = """
        import os, sys, time
        if not os.path.exists("/scratch/tried"):
            open("/scratch/tried", "w").close()
            print("first try fails", flush=True)
            sys.exit(3)
        print("second try", flush=True)
        time.sleep(4)
        print("done", flush=True)
    """
    client.CoreV1Api(api).create_namespaced_pod(namespace, _pod("retry", script, restart="OnFailure"))

    def restarted_and_running() -> bool:
        pod = client.CoreV1Api(api).read_namespaced_pod("retry", namespace)
        statuses = pod.status.container_statuses or []
        return bool(statuses and statuses[0].restart_count >= 1 and statuses[0].state.running)

    wait_until(restarted_and_running, 60, "the second start of retry")
    followed = kubectl("logs", "-n", namespace, "retry", "--follow")
    assert followed.stdout == "second try\ndone\n"
    assert _phase(api, namespace, "retry") in ("Running", "Succeeded")  # follow ended with the container
    assert kubectl("logs", "-n", namespace, "retry", "--previous").stdout == "first try fails\n"


def test_kubectl_logs_of_a_finished_runner_pod(
    api: client.ApiClient,
    namespace: str,
    kubectl: Kubectl,
    operator: ChartOperator,
    dev_cluster: DevCluster,
    tmp_path: Path,
) -> None:
    client.CoreV1Api(api).create_namespaced_config_map(namespace, repo_configmap("repo", example_files()))
    projects = Projects(api, namespace)
    projects.create(project_manifest("drivers", tmp_path, {"configMap": {"name": "repo"}}))
    last_apply = projects.wait_condition("drivers", "Ready", timeout=180)["status"]["lastApply"]
    logs = kubectl("logs", "-n", namespace, f"job/{last_apply['jobName']}")
    result = json.loads(logs.stdout.strip().splitlines()[-1])
    assert result["operation"] == "apply" and result["ok"] is True
    assert result["changes"]["featureViews"] == last_apply["changes"]["featureViews"]
    assert "+driver_hourly_stats" in result["changes"]["featureViews"]
    # The same bytes as the node's copy, minus the line the node writes before each start.
    pod = kubectl("get", "pods", "-n", namespace, "-l", f"job-name={last_apply['jobName']}", "-o", "json").stdout
    meta = json.loads(pod)["items"][0]["metadata"]
    container = json.loads(pod)["items"][0]["spec"]["containers"][0]["name"]
    kept = (
        dev_cluster.directory / "node" / "pods" / f"{namespace}_{meta['name']}_{meta['uid'][:8]}" / f"{container}.log"
    )
    assert kept.read_text().split("\n", 1)[1] == logs.stdout


def test_the_node_serves_logs_only_to_the_api_server(api: client.ApiClient, namespace: str) -> None:
    node = client.CoreV1Api(api).read_node("local-node")
    port = node.status.daemon_endpoints.kubelet_endpoint.port
    assert port > 0
    # No client certificate: the TLS handshake itself fails.
    probe = (
        "import socket, ssl; "
        f"ssl._create_unverified_context().wrap_socket(socket.create_connection(('127.0.0.1', {port}))).recv(1)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=30)
    assert done.returncode != 0 and "SSL" in done.stderr
