"""Repo sources and bad input: Git provenance, and every broken input stalls with its cause, then recovers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.cluster.projects import Projects, example_files, git, git_repo, project_manifest, repo_configmap
from tests.cluster_helpers import OperatorProcess, wait_until

pytestmark = pytest.mark.cluster


def test_git_project_records_the_commit_and_reapplies_when_the_branch_moves(
    api: client.ApiClient, namespace: str, operator: OperatorProcess, tmp_path: Path
) -> None:
    bare, work = git_repo(tmp_path)
    first_commit = git(work, "rev-parse", "HEAD")
    projects = Projects(api, namespace)
    repo = {"git": {"url": f"file://{bare}", "revision": "main", "path": "features"}}
    projects.create(project_manifest("drivers", tmp_path / "data", repo))
    last = projects.wait_condition("drivers", "Ready", timeout=180)["status"]["lastApply"]
    assert (last["revision"], last["commit"]) == ("main", first_commit)

    feature_file = work / "features" / "features.py"
    feature_file.write_text(feature_file.read_text().replace("ttl=timedelta(days=1)", "ttl=timedelta(days=3)", 1))
    git(work, "commit", "-q", "-am", "longer ttl")
    git(work, "push", "-q", "origin", "main")
    second_commit = git(work, "rev-parse", "HEAD")

    def reapplied() -> dict[str, Any] | None:
        current = projects.get("drivers")["status"].get("lastApply") or {}
        return current if current.get("commit") == second_commit and current.get("outcome") else None

    second = wait_until(reapplied, 180, "an apply of the new commit")
    assert second["trigger"] == "new git commit"
    assert second["outcome"] == "Succeeded"
    assert second["changes"]["featureViews"] == ["~driver_hourly_stats"]
    assert len(projects.apply_jobs("drivers")) == 2


def _stalls_then_recovers(
    projects: Projects, name: str, reason: str, message: str, fix: Any, timeout: float = 180
) -> None:
    stalled = projects.wait_condition(name, "Stalled", "True", reason, timeout=timeout)
    condition = next(c for c in stalled["status"]["conditions"] if c["type"] == "Stalled")
    assert message in condition["message"], condition["message"]
    assert (reason, condition["message"]) in projects.events(name)
    fix()
    projects.wait_condition(name, "Ready", timeout=timeout)
    assert projects.condition(name, "Stalled")["status"] == "False"  # type: ignore[index]


def test_missing_configmap_stalls_until_it_exists(
    api: client.ApiClient, namespace: str, operator: OperatorProcess, tmp_path: Path
) -> None:
    core, projects = client.CoreV1Api(api), Projects(api, namespace)
    projects.create(project_manifest("drivers", tmp_path / "data", {"configMap": {"name": "late-repo"}}))
    _stalls_then_recovers(
        projects,
        "drivers",
        "RepoNotFound",
        f'ConfigMap "late-repo" (repo.configMap) not found in namespace {namespace}',
        lambda: core.create_namespaced_config_map(namespace, repo_configmap("late-repo", example_files())),
    )
    assert projects.apply_jobs("drivers") != []


def test_repo_that_fails_to_import_stalls_with_the_python_error(
    api: client.ApiClient, namespace: str, operator: OperatorProcess, tmp_path: Path
) -> None:
    core, projects = client.CoreV1Api(api), Projects(api, namespace)
    files = example_files()
    broken = dict(files, **{"features.py": files["features.py"].replace(b"Field(", b"Fielld(", 1)})
    core.create_namespaced_config_map(namespace, repo_configmap("repo", broken))
    projects.create(project_manifest("drivers", tmp_path / "data", {"configMap": {"name": "repo"}}))
    failed_apply: dict[str, Any] = {}

    def fix() -> None:
        failed_apply.update(projects.get("drivers")["status"]["lastApply"])
        core.replace_namespaced_config_map("repo", namespace, repo_configmap("repo", files))

    _stalls_then_recovers(projects, "drivers", "ApplyFailed", "NameError: name 'Fielld' is not defined", fix)
    assert failed_apply["outcome"] == "Failed" and "Fielld" in failed_apply["error"]
    # The fixed apply's record is whole: nothing of the failed one survives in it.
    fixed = projects.get("drivers")["status"]["lastApply"]
    assert fixed["outcome"] == "Succeeded" and "error" not in fixed, fixed
    assert fixed["jobName"] != failed_apply["jobName"] and fixed["changes"]["featureViews"]
    # The failed apply ran once: nothing crash-loops while the input stays broken.
    assert len(projects.apply_jobs("drivers")) == 2


def test_unknown_store_type_stalls_until_the_spec_is_fixed(
    api: client.ApiClient, namespace: str, operator: OperatorProcess, tmp_path: Path
) -> None:
    core, projects = client.CoreV1Api(api), Projects(api, namespace)
    core.create_namespaced_config_map(namespace, repo_configmap("repo", example_files()))
    manifest = project_manifest("drivers", tmp_path / "data", {"configMap": {"name": "repo"}})
    good_store = manifest["spec"]["featureStore"]
    manifest["spec"]["featureStore"] = {**good_store, "onlineStore": {"type": "nosuchstore"}}
    projects.create(manifest)
    _stalls_then_recovers(
        projects,
        "drivers",
        "ApplyFailed",
        "unknown online store type 'nosuchstore'",
        lambda: projects.patch_spec("drivers", {"featureStore": good_store}),
    )


def test_missing_secret_stalls_until_it_exists(
    api: client.ApiClient, namespace: str, operator: OperatorProcess, tmp_path: Path
) -> None:
    core, projects = client.CoreV1Api(api), Projects(api, namespace)
    core.create_namespaced_config_map(namespace, repo_configmap("repo", example_files()))
    manifest = project_manifest("drivers", tmp_path / "data", {"configMap": {"name": "repo"}})
    # The online store path comes from a Secret and reaches the runner only as ${ONLINE_DB}.
    manifest["spec"]["featureStore"]["onlineStore"]["settings"]["path"] = "${ONLINE_DB}"
    manifest["spec"]["featureStore"]["secretEnv"] = [
        {"name": "ONLINE_DB", "secretKeyRef": {"name": "store-secrets", "key": "online-db"}}
    ]
    projects.create(manifest)
    secret = {"metadata": {"name": "store-secrets"}, "stringData": {"online-db": "/feast-data/secret-path.db"}}
    _stalls_then_recovers(
        projects,
        "drivers",
        "SecretNotFound",
        'Secret "store-secrets" (secretEnv ONLINE_DB) not found',
        lambda: core.create_namespaced_secret(namespace, secret),
    )
    assert (tmp_path / "data" / "secret-path.db").exists()
    rendered = core.read_namespaced_config_map("drivers-runner-config", namespace).data["feature_store.yaml"]
    assert "${ONLINE_DB}" in rendered and "secret-path" not in rendered


def test_unknown_git_revision_and_unreachable_server_stall_then_recover(
    api: client.ApiClient, namespace: str, operator: OperatorProcess, tmp_path: Path
) -> None:
    bare, _ = git_repo(tmp_path)
    projects = Projects(api, namespace)
    repo = {"git": {"url": f"file://{bare}", "revision": "release-9", "path": "features"}}
    projects.create(project_manifest("drivers", tmp_path / "data", repo))
    missing_revision = projects.wait_condition("drivers", "Stalled", "True", "GitRevisionNotFound")
    message = next(c["message"] for c in missing_revision["status"]["conditions"] if c["type"] == "Stalled")
    assert message == f"revision 'release-9' not found in file://{bare}"
    assert projects.apply_jobs("drivers") == []
    unreachable = {**repo["git"], "url": f"file://{tmp_path}/gone.git", "revision": "main"}
    projects.patch_spec("drivers", {"repo": {"git": unreachable}})
    _stalls_then_recovers(
        projects,
        "drivers",
        "GitUnreachable",
        "does not appear to be a git repository",
        lambda: projects.patch_spec("drivers", {"repo": {"git": {**repo["git"], "revision": "main"}}}),
    )
