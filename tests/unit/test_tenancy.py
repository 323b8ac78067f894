"""The tenant boundary, pure: the administrator's policy and what a user must be able to do alone."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from feast_lineage.api import FeatureStoreProject, FeatureStoreProjectSpec, validation_message
from feast_lineage.domain.apply_plan import RepoIdentity
from feast_lineage.domain.runner_job import RunnerJobRequest, render_runner_job
from feast_lineage.domain.tenancy import (
    AccessCheck,
    TenancyPolicy,
    check_revision,
    is_full_commit,
    policy_violations,
    required_access,
)
from feast_lineage.domain.webhook_config import validation_webhook_configuration
from feast_lineage.git_credentials import GitTrust, git_env
from feast_lineage.redaction import KNOWN
from feast_lineage.tenancy.admission import ResourceValidation, subject_access_review


def _spec(**overrides: Any) -> FeatureStoreProjectSpec:
    spec: dict[str, Any] = {
        "project": "drivers",
        "repo": {"configMap": {"name": "repo"}},
        "featureStore": {
            "registry": {"path": "/data/registry.db"},
            "onlineStore": {"type": "redis", "settings": {"connection_string": "${REDIS_URL}"}},
            "secretEnv": [{"name": "REDIS_URL", "secretKeyRef": {"name": "redis", "key": "url"}}],
        },
    }
    spec.update(overrides)
    return FeatureStoreProjectSpec.model_validate(spec)


def test_a_plain_project_is_allowed() -> None:
    assert policy_violations(_spec(), TenancyPolicy()) == []


@pytest.mark.parametrize(
    ("runner", "expected"),
    [
        ({"volumes": [{"name": "h", "hostPath": {"path": "/"}}]}, "volume type hostPath is not allowed"),
        ({"serviceAccountName": "deployer"}, "serviceAccountName 'deployer' is not allowed"),
        ({"tolerations": [{"operator": "Exists"}]}, "tolerations are not allowed"),
        ({"nodeSelector": {"gpu": "yes"}}, "nodeSelector key 'gpu' is not allowed"),
        ({"env": [{"name": "PYTHONPATH", "value": "/evil"}]}, "PYTHONPATH: the name is reserved"),
        ({"env": [{"name": "FEAST_LINEAGE_AUDIT_ID", "value": "x"}]}, "FEAST_LINEAGE_AUDIT_ID: the name is reserved"),
        ({"env": [{"name": "GIT_SSH_COMMAND", "value": "x"}]}, "GIT_SSH_COMMAND: the name is reserved"),
    ],
)
def test_runner_settings_outside_the_policy_are_refused(runner: dict[str, Any], expected: str) -> None:
    (problem,) = policy_violations(_spec(runner=runner), TenancyPolicy())
    assert expected in problem


def test_an_administrator_can_allow_them() -> None:
    runner = {
        "volumes": [{"name": "h", "hostPath": {"path": "/"}}],
        "serviceAccountName": "deployer",
        "tolerations": [{"operator": "Exists"}],
        "nodeSelector": {"gpu": "yes"},
    }
    policy = TenancyPolicy(
        runner_volume_types=frozenset({"hostPath"}),
        runner_service_accounts=frozenset({"deployer"}),
        allow_tolerations=True,
        node_selector_keys=frozenset({"gpu"}),
    )
    assert policy_violations(_spec(runner=runner), policy) == []


def test_secret_env_cannot_shadow_reserved_names() -> None:
    store = {
        "registry": {"path": "/data/registry.db"},
        "secretEnv": [{"name": "MLFLOW_TRACKING_URI", "secretKeyRef": {"name": "s", "key": "k"}}],
    }
    (problem,) = policy_violations(_spec(featureStore=store), TenancyPolicy())
    assert "secretEnv MLFLOW_TRACKING_URI" in problem


def test_only_declared_names_are_expanded() -> None:
    store = {"registry": {"path": "/data/${HOME}/registry.db"}, "onlineStore": {"type": "$STORE_TYPE"}}
    problems = policy_violations(_spec(featureStore=store), TenancyPolicy())
    assert any("spec.featureStore.registry.path: ${HOME}" in p for p in problems)
    assert any("spec.featureStore.onlineStore.type: $STORE_TYPE" in p for p in problems)


@pytest.mark.parametrize(
    ("git", "expected"),
    [
        ({"url": "file:///etc"}, "protocol file is not allowed"),
        ({"url": "https://git.example/r.git", "revision": "--upload-pack=x"}, "must not start with '-'"),
        ({"url": "https://git.example/r.git", "revision": "main..evil"}, "not a branch, tag or commit"),
        ({"url": "http://git.example/r.git", "secretRef": {"name": "git"}}, "only sent over https or ssh"),
        ({"url": "https://u:p@git.example/r.git"}, "must not carry a password"),
    ],
)
def test_git_sources_outside_the_policy_are_refused(git: dict[str, Any], expected: str) -> None:
    problems = policy_violations(_spec(repo={"git": git}), TenancyPolicy())
    assert any(expected in p for p in problems), problems


def test_credentials_go_to_loopback_over_http_but_nowhere_else() -> None:
    loopback = {"git": {"url": "http://127.0.0.1:9418/r.git", "secretRef": {"name": "git"}}}
    assert policy_violations(_spec(repo=loopback), TenancyPolicy(git_protocols=frozenset({"http"}))) == []
    mlflow = {"trackingUri": "http://mlflow.example:5000", "credentials": {"secretName": "m", "tokenKey": "t"}}
    (problem,) = policy_violations(_spec(mlflow=mlflow), TenancyPolicy())
    assert "only sent over https" in problem
    # User info never gets as far as the policy: the schema's rule refuses it, without repeating it.
    userinfo = {"trackingUri": "https://user:pw-canary@mlflow.example"}
    with pytest.raises(ValidationError, match="must not carry user info") as refused:
        _spec(mlflow=userinfo)
    assert "pw-canary" not in validation_message(refused.value)


def test_revisions_and_commits() -> None:
    assert check_revision("release/2026-11") is None and check_revision("v1.2.3") is None
    assert is_full_commit("a" * 40) and is_full_commit("b" * 64)
    assert not is_full_commit("a" * 39) and not is_full_commit("--upload-pack=x")


def test_required_access_names_every_secret_and_the_runner_account() -> None:
    spec = _spec(
        repo={"git": {"url": "https://git.example/r.git", "secretRef": {"name": "git-creds"}}},
        mlflow={"credentials": {"secretName": "mlflow-auth", "tokenKey": "t"}},
        runner={"serviceAccountName": "feast-runner"},
    )
    described = [check.describe() for check in required_access(spec, "ml")]
    assert described[0].startswith("create pods in namespace ml")
    assert any('get secrets "redis"' in d and "secretEnv REDIS_URL" in d for d in described)
    assert any('get secrets "git-creds"' in d for d in described)
    assert any('get secrets "mlflow-auth"' in d for d in described)
    assert any('create serviceaccounts/token "feast-runner"' in d for d in described)
    assert [c.resource for c in required_access(None, "ml")] == ["pods"]


def _request(user: str, spec: dict[str, Any], operation: str = "CREATE", old: dict[str, Any] | None = None) -> Any:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "request": {
            "uid": "u-1",
            "kind": {"group": "featurelineage.io", "version": "v1alpha1", "kind": "FeatureStoreProject"},
            "namespace": "ml",
            "operation": operation,
            "userInfo": {"username": user, "groups": ["team"]},
            "object": {"spec": spec},
            "oldObject": {"spec": old} if old is not None else None,
        },
    }


def test_validation_denies_naming_what_the_user_lacks() -> None:
    asked: list[tuple[str, AccessCheck]] = []

    def authorize(user: dict[str, Any], check: AccessCheck) -> bool:
        asked.append((user["username"], check))
        return check.resource != "secrets"

    validation = ResourceValidation(authorize, TenancyPolicy())
    spec = _spec().model_dump(mode="json", by_alias=True, exclude_none=True)
    response = validation.review(_request("alice", spec))["response"]
    assert response["allowed"] is False
    assert 'user "alice" may not get secrets "redis" in namespace ml' in response["status"]["message"]
    assert {user for user, _ in asked} == {"alice"}
    unchanged = validation.review(_request("alice", spec, "UPDATE", old=spec))["response"]
    assert unchanged["allowed"] is True, "a metadata-only update asks nothing"


def test_access_reviews_of_one_request_are_asked_at_once() -> None:
    """Three Secrets and a pod: four reviews in flight together (a barrier of four would time out
    if they were asked one after another)."""
    arrived = threading.Barrier(4, timeout=10)

    def authorize(user: dict[str, Any], check: AccessCheck) -> bool:
        arrived.wait()
        return True

    secrets = [{"name": f"S{i}", "secretKeyRef": {"name": f"secret-{i}", "key": "k"}} for i in range(3)]
    store = {"registry": {"path": "/data/registry.db"}, "secretEnv": secrets}
    spec = _spec(featureStore=store).model_dump(mode="json", by_alias=True, exclude_none=True)
    response = ResourceValidation(authorize, TenancyPolicy()).review(_request("alice", spec))["response"]
    assert response["allowed"] is True


def test_subject_access_review_carries_the_users_identity() -> None:
    check = AccessCheck("get", "secrets", "ml", name="redis")
    body = subject_access_review({"username": "alice", "groups": ["team"], "uid": "7", "extra": {"k": ["v"]}}, check)
    assert body["spec"]["user"] == "alice" and body["spec"]["groups"] == ["team"] and body["spec"]["uid"] == "7"
    assert body["spec"]["resourceAttributes"] == {
        "namespace": "ml",
        "verb": "get",
        "group": "",
        "resource": "secrets",
        "name": "redis",
    }


def test_validation_webhook_fails_closed_and_skips_the_operator() -> None:
    (webhook,) = validation_webhook_configuration({"url": "https://127.0.0.1/x"}, "system:serviceaccount:o:op")[
        "webhooks"
    ]
    assert webhook["failurePolicy"] == "Fail"
    assert "system:serviceaccount:o:op" in webhook["matchConditions"][0]["expression"]
    assert webhook["rules"][0]["operations"] == ["CREATE", "UPDATE"]


def test_runner_jobs_carry_the_allowed_git_protocols() -> None:
    project = FeatureStoreProject.model_validate(
        {
            "metadata": {"name": "drivers", "namespace": "ml", "uid": "u"},
            "spec": _spec(repo={"git": {"url": "https://git.example/r.git"}}).model_dump(
                mode="json", by_alias=True, exclude_none=True
            ),
        }
    )
    request = RunnerJobRequest(
        operation="apply",
        job_name="drivers-apply-1",
        runner_image="runner:1",
        runner_config_map="drivers-runner-config",
        repo=RepoIdentity("git", "main", "x", "a" * 40),
        provenance={},
        audit_id="a",
        labels={},
        annotations={},
        owner={},
        backoff_limit=0,
        git_protocols=("https",),
    )
    env = {
        e["name"]: e.get("value")
        for e in render_runner_job(project, request)["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["FEAST_LINEAGE_GIT_ALLOW_PROTOCOL"] == "https"


def test_only_the_schedule_marks_runs_as_scheduled() -> None:
    validation = ResourceValidation(lambda user, check: True, TenancyPolicy())
    run: dict[str, Any] = {
        "metadata": {"annotations": {"featurelineage.io/scheduled-time": "2026-11-27T03:00:00Z"}},
        "spec": {"projectRef": {"name": "drivers"}},
    }
    request = {
        "uid": "u",
        "kind": {"kind": "MaterializationJob"},
        "namespace": "ml",
        "operation": "CREATE",
        "userInfo": {"username": "alice"},
        "object": run,
    }
    assert "set only by the operator's schedule" in validation.problems(request)[0]
    owned = {
        "metadata": {
            "ownerReferences": [{"kind": "FeatureStoreProject", "name": "drivers", "uid": "1", "controller": True}]
        }
    }
    assert validation.problems({**request, "object": {**owned, "spec": run["spec"]}})
    assert validation.problems({**request, "object": {"metadata": {}, "spec": run["spec"]}}) == []


def test_ssh_needs_the_projects_known_hosts() -> None:
    (problem,) = policy_violations(_spec(repo={"git": {"url": "git@git.example:team/r.git"}}), TenancyPolicy())
    assert "knownHostsRef is required for ssh" in problem
    pinned = {"url": "ssh://git@git.example/team/r.git", "knownHostsRef": {"name": "hosts", "key": "known_hosts"}}
    assert policy_violations(_spec(repo={"git": pinned}), TenancyPolicy()) == []


def test_git_trusts_only_what_the_project_names(tmp_path: Path) -> None:
    trust = GitTrust.write(tmp_path, "CA PEM", "git.example ssh-ed25519 AAAA", "KEY")
    env = git_env({}, tmp_path / "askpass", trust=trust)
    assert env["GIT_SSL_CAINFO"] == str(tmp_path / "ca.crt")
    ssh = env["GIT_SSH_COMMAND"]
    assert "StrictHostKeyChecking=yes" in ssh and f"UserKnownHostsFile={tmp_path / 'known_hosts'}" in ssh
    assert "GlobalKnownHostsFile=/dev/null" in ssh and f"-i {tmp_path / 'ssh-privatekey'}" in ssh
    assert (tmp_path / "ssh-privatekey").stat().st_mode & 0o077 == 0, "the key is private"
    assert "StrictHostKeyChecking=yes" in git_env({}, tmp_path / "askpass")["GIT_SSH_COMMAND"]


def test_a_refusal_never_repeats_a_secret_value_the_operator_knows() -> None:
    # Contrived, but it shows the path: a value the operator learned from a Secret that a refusal quotes.
    spec = _spec(repo={"git": {"url": "https://git.example/r.git", "revision": "tok-3f9a1c"}}).model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    spec["repo"]["git"]["revision"] = "-tok-3f9a1c"  # a revision git could read as an option
    KNOWN.learn(["-tok-3f9a1c"])
    response = ResourceValidation(lambda user, check: True, TenancyPolicy()).review(_request("alice", spec))
    message = response["response"]["status"]["message"]
    assert "revision" in message and "tok-3f9a1c" not in message, message


def test_only_a_settled_run_may_carry_the_settled_label() -> None:
    validation = ResourceValidation(lambda user, check: True, TenancyPolicy())
    spec = {"projectRef": {"name": "drivers"}}
    label = {"featurelineage.io/settled": "true"}
    finished = {"phase": "Succeeded"}

    def request(operation: str, new: dict[str, Any], old: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "uid": "u",
            "kind": {"kind": "MaterializationJob"},
            "namespace": "ml",
            "operation": operation,
            "userInfo": {"username": "alice"},
            "object": new,
            "oldObject": old,
        }

    # A new run with it would never be seen by the operator.
    [problem] = validation.problems(request("CREATE", {"metadata": {"labels": label}, "spec": spec}))
    assert "featurelineage.io/settled" in problem and "never on a new or unfinished one" in problem
    # Added to a run that is running, or finished but still held for its record: refused.
    running: dict[str, Any] = {
        "metadata": {"finalizers": ["featurelineage.io/finalizer"]},
        "spec": spec,
        "status": {"phase": "Running"},
    }
    labelled_running = {**running, "metadata": {**running["metadata"], "labels": label}}
    assert validation.problems(request("UPDATE", labelled_running, running))
    held: dict[str, Any] = {**running, "status": {**finished, "pendingAudit": [{"i": "a"}]}}
    assert validation.problems(request("UPDATE", {**held, "metadata": {**held["metadata"], "labels": label}}, held))
    # Added to a settled run (what the operator does), kept, or taken off: allowed.
    done = {"metadata": {}, "spec": spec, "status": finished}
    labelled_done = {**done, "metadata": {"labels": label}}
    assert validation.problems(request("UPDATE", labelled_done, done)) == []
    assert validation.problems(request("UPDATE", labelled_done, labelled_done)) == []
    assert validation.problems(request("UPDATE", done, labelled_done)) == []
