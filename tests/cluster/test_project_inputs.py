"""Repo sources and bad input: Git provenance, and every broken input stalls with its cause, then recovers."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from feast_lineage.devcluster.processes import free_port
from tests.cluster.git_https import https_git_server
from tests.cluster.projects import Projects, example_files, git, git_repo, project_manifest, repo_configmap
from tests.cluster_helpers import wait_until
from tests.operator_pod import ChartOperator

pytestmark = pytest.mark.cluster


def test_git_project_records_the_commit_and_reapplies_when_the_branch_moves(
    api: client.ApiClient, namespace: str, operator: ChartOperator, tmp_path: Path, git_server: str
) -> None:
    _, work = git_repo(tmp_path)
    first_commit = git(work, "rev-parse", "HEAD")
    projects = Projects(api, namespace)
    repo = {"git": {"url": f"{git_server}/server.git", "revision": "main", "path": "features"}}
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
    api: client.ApiClient, namespace: str, operator: ChartOperator, tmp_path: Path
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
    api: client.ApiClient, namespace: str, operator: ChartOperator, tmp_path: Path
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
    api: client.ApiClient, namespace: str, operator: ChartOperator, tmp_path: Path
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
    api: client.ApiClient, namespace: str, operator: ChartOperator, tmp_path: Path
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
    api: client.ApiClient, namespace: str, operator: ChartOperator, tmp_path: Path, git_server: str
) -> None:
    git_repo(tmp_path)
    projects = Projects(api, namespace)
    repo = {"git": {"url": f"{git_server}/server.git", "revision": "release-9", "path": "features"}}
    projects.create(project_manifest("drivers", tmp_path / "data", repo))
    missing_revision = projects.wait_condition("drivers", "Stalled", "True", "GitRevisionNotFound")
    message = next(c["message"] for c in missing_revision["status"]["conditions"] if c["type"] == "Stalled")
    assert message == f"revision 'release-9' not found in {git_server}/server.git"
    assert projects.apply_jobs("drivers") == []
    unreachable = {**repo["git"], "url": f"git://127.0.0.1:{free_port()}/gone.git", "revision": "main"}
    projects.patch_spec("drivers", {"repo": {"git": unreachable}})
    _stalls_then_recovers(
        projects,
        "drivers",
        "GitUnreachable",
        "unable to connect",
        lambda: projects.patch_spec("drivers", {"repo": {"git": {**repo["git"], "revision": "main"}}}),
    )


def test_a_store_that_would_die_with_the_runner_stalls_and_recovers(
    api: client.ApiClient, namespace: str, operator: ChartOperator, tmp_path: Path
) -> None:
    client.CoreV1Api(api).create_namespaced_config_map(namespace, repo_configmap("repo", example_files()))
    projects = Projects(api, namespace)
    manifest = project_manifest("drivers", tmp_path / "data", {"configMap": {"name": "repo"}})
    on_volume = manifest["spec"]["featureStore"]
    projects.create({**manifest, "spec": {**manifest["spec"], "featureStore": {"registry": on_volume["registry"]}}})
    _stalls_then_recovers(
        projects,
        "drivers",
        "EphemeralStore",
        "onlineStore is not set: Feast's default is a sqlite file in the runner's throwaway workspace",
        lambda: projects.patch_spec("drivers", {"featureStore": on_volume}),
    )
    assert len(projects.apply_jobs("drivers")) == 1, "nothing was applied while the store would not persist"


def test_https_git_with_credentials_and_a_private_ca(
    api: client.ApiClient, namespace: str, operator: ChartOperator, tmp_path: Path
) -> None:
    _, work = git_repo(tmp_path)
    commit = git(work, "rev-parse", "HEAD")
    password = "s3cret-git-pass"
    with https_git_server(tmp_path / "served", tmp_path, "reader", password) as server:
        core = client.CoreV1Api(api)
        core.create_namespaced_secret(
            namespace, {"metadata": {"name": "git-creds"}, "stringData": {"username": "reader", "password": password}}
        )
        core.create_namespaced_config_map(
            namespace, {"metadata": {"name": "git-ca"}, "data": {"ca.crt": server.ca_pem}}
        )
        projects = Projects(api, namespace)
        source = {
            "url": f"{server.url}/server.git",
            "revision": "main",
            "path": "features",
            "secretRef": {"name": "git-creds"},
            "caBundleRef": {"name": "git-ca", "key": "ca.crt"},
        }
        projects.create(project_manifest("drivers", tmp_path / "data", {"git": source}))
        # The operator resolved the commit and the runner checked it out, both over TLS with the credentials.
        last = projects.wait_condition("drivers", "Ready", timeout=180)["status"]["lastApply"]
        assert (last["commit"], last["outcome"]) == (commit, "Succeeded")

        core.patch_namespaced_secret("git-creds", namespace, {"stringData": {"password": "wrong-pass-x"}})
        projects.patch_spec("drivers", {"repo": {"git": {**source, "revision": "refs/heads/main"}}})
        refused = projects.wait_condition("drivers", "Stalled", "True", "GitUnreachable", timeout=60)
        message = next(c["message"] for c in refused["status"]["conditions"] if c["type"] == "Stalled")
        assert "Authentication failed" in message or "401" in message, message
        assert "wrong-pass-x" not in json.dumps(refused) and password not in json.dumps(refused)

        # Without the CA, the server's certificate is not trusted: nothing is sent to it.
        core.patch_namespaced_secret("git-creds", namespace, {"stringData": {"password": password}})
        untrusted = {k: v for k, v in source.items() if k != "caBundleRef"}
        projects.patch_spec("drivers", {"repo": {"git": {**untrusted, "caBundleRef": None}}})

        def untrusted_server() -> str | None:
            stalled = projects.condition("drivers", "Stalled") or {}
            text = str(stalled.get("message", ""))
            return text if stalled.get("reason") == "GitUnreachable" and "certificate" in text.lower() else None

        assert "server certificate verification failed" in wait_until(
            untrusted_server, 60, "a message on the certificate"
        )


def test_a_repo_configmap_created_after_its_project_is_acted_on_in_seconds(
    api: client.ApiClient, namespace: str, operator: ChartOperator, tmp_path: Path
) -> None:
    # With a 10-minute resync, only the ConfigMap watch can explain a reaction within the minute.
    with operator.reconfigured("resyncSeconds=600"):
        projects = Projects(api, namespace)
        projects.create(project_manifest("drivers", tmp_path / "data", {"configMap": {"name": "late-repo"}}))
        stalled = projects.wait_condition("drivers", "Stalled", "True", "RepoNotFound", timeout=60)
        message = next(c["message"] for c in stalled["status"]["conditions"] if c["type"] == "Stalled")
        assert message.endswith("; acted on as soon as it is created or changed"), message
        created = time.monotonic()
        client.CoreV1Api(api).create_namespaced_config_map(namespace, repo_configmap("late-repo", example_files()))
        wait_until(
            lambda: (projects.condition("drivers", "Stalled") or {}).get("status") == "False", 60, "the project to act"
        )
        print(f"repo ConfigMap created after its project: acted on in {time.monotonic() - created:.1f}s (resync 600s)")
