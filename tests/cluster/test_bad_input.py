"""Input the schema admits but nothing can use: Stalled with a reason, never an endless retry loop."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.cluster.projects import Projects, example_files, git_repo, project_manifest, repo_configmap
from tests.cluster_helpers import without_validation
from tests.operator_pod import ChartOperator

pytestmark = pytest.mark.cluster


def test_a_git_url_no_parser_reads_stalls_as_an_invalid_spec_then_recovers(
    api: client.ApiClient, namespace: str, operator: ChartOperator, tmp_path: Path, git_server: str
) -> None:
    projects = Projects(api, namespace)
    manifest = project_manifest("drivers", tmp_path / "data", {"git": {"url": "https://[x", "path": "features"}})
    # Admission refuses it with the reason...
    with pytest.raises(ApiException) as refused:
        projects.create(manifest)
    assert "repo.git.url: not a valid URL: Invalid IPv6 URL" in str(json.loads(refused.value.body)["message"])
    # ...and what gets past admission (no webhook installed) stalls with it.
    with without_validation(api):
        projects.create(manifest)
    stalled = projects.wait_condition("drivers", "Stalled", "True", "InvalidSpec", timeout=60)
    message = next(c["message"] for c in stalled["status"]["conditions"] if c["type"] == "Stalled")
    assert "not a valid URL: Invalid IPv6 URL" in message, message
    git_repo(tmp_path)
    projects.patch_spec("drivers", {"repo": {"git": {"url": f"{git_server}/server.git", "path": "features"}}})
    projects.wait_condition("drivers", "Ready", timeout=180)


def test_a_job_the_api_server_rejects_stalls_with_its_message_then_recovers(
    api: client.ApiClient, namespace: str, operator: ChartOperator, tmp_path: Path
) -> None:
    core, projects = client.CoreV1Api(api), Projects(api, namespace)
    core.create_namespaced_config_map(namespace, repo_configmap("repo", example_files()))
    manifest = project_manifest("drivers", tmp_path / "data", {"configMap": {"name": "repo"}})
    good_runner = manifest["spec"]["runner"]
    # A volume name the Job API refuses (422): only the API server knows its rules for pod specs.
    manifest["spec"]["runner"] = {
        "volumes": [*good_runner["volumes"], {"name": "Not_A_DNS_Label", "emptyDir": {}}],
        "volumeMounts": [*good_runner["volumeMounts"], {"name": "Not_A_DNS_Label", "mountPath": "/scratch"}],
    }
    projects.create(manifest)
    stalled = projects.wait_condition("drivers", "Stalled", "True", "ApiRequestRejected", timeout=60)
    message = next(c["message"] for c in stalled["status"]["conditions"] if c["type"] == "Stalled")
    assert message.startswith("the API server refused a request (422):") and "Not_A_DNS_Label" in message, message
    assert projects.apply_jobs("drivers") == []
    # One Event for the transition, however many resyncs meet the same refusal.
    events = [reason for reason, _ in projects.events("drivers") if reason == "ApiRequestRejected"]
    assert events == ["ApiRequestRejected"]
    # A merge patch replaces the lists whole.
    projects.patch_spec("drivers", {"runner": good_runner})
    projects.wait_condition("drivers", "Ready", timeout=180)
