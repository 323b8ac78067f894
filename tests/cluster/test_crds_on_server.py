"""The generated CRDs on a real API server: they install, explain, and enforce every schema and CEL rule."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.api_cases import BAD_CASES, GOOD_CASES, UPDATE_CASES, BadCase, GoodCase, UpdateCase
from tests.cluster_helpers import without_validation
from tests.conftest import REPO_ROOT, Kubectl

pytestmark = pytest.mark.cluster

CRDS = REPO_ROOT / "crds"


@pytest.fixture(autouse=True, scope="module")
def schema_only(api: client.ApiClient) -> Iterator[None]:
    """These cases test the CRDs' schema and CEL rules, which hold with or without the operator: the
    validating webhook, registered once an operator has started in this session, adds the
    administrator's policy (tested in test_tenancy) and is set aside here."""
    with without_validation(api):
        yield


def _manifest_yaml(manifest: dict[str, Any]) -> str:
    return yaml.safe_dump(manifest)


def test_crds_apply_client_side_and_server_side(kubectl: Kubectl, crds_installed: None) -> None:
    client_side = kubectl("apply", "-f", str(CRDS))
    assert "featurestoreprojects.featurelineage.io" in client_side.stdout
    server_side = kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRDS))
    assert "serverside-applied" in server_side.stdout
    names = kubectl("api-resources", "--api-group=featurelineage.io", "-o", "name").stdout.split()
    assert sorted(names) == ["featurestoreprojects.featurelineage.io", "materializationjobs.featurelineage.io"]
    short = kubectl("api-resources", "--categories=featurelineage", "--no-headers").stdout
    assert "fsp" in short and "mj" in short


def test_kubectl_explain_shows_field_docs(kubectl: Kubectl, crds_installed: None) -> None:
    spec = kubectl("explain", "featurestoreprojects.spec").stdout
    for field in ("project", "repo", "featureStore", "mlflow", "materialization", "runner", "injection"):
        assert f"  {field}\t" in spec or f"  {field} " in spec, spec
    repo = kubectl("explain", "fsp.spec.repo.git.revision").stdout
    assert "DESCRIPTION:" in repo and len(repo.split("DESCRIPTION:")[1].strip()) > 20
    # kubectl explain prints no `default`; the descriptions carry it.
    policy = " ".join(kubectl("explain", "fsp.spec.materialization.concurrencyPolicy").stdout.split())
    assert 'Defaults to "Forbid".' in policy, policy
    mode = " ".join(kubectl("explain", "mj.spec.mode").stdout.split())
    assert 'Defaults to "Incremental".' in mode, mode


def test_client_dry_run_validates_against_the_server(kubectl: Kubectl, crds_installed: None, namespace: str) -> None:
    example = REPO_ROOT / "examples" / "driver-stats" / "featurestoreproject.yaml"
    result = kubectl("apply", "--dry-run=client", "-n", namespace, "-f", str(example))
    assert "featurestoreproject.featurelineage.io/driver-stats created (dry run)" in result.stdout


@pytest.mark.parametrize("case", GOOD_CASES, ids=lambda c: c.id)
def test_good_manifest_is_accepted(kubectl: Kubectl, crds_installed: None, namespace: str, case: GoodCase) -> None:
    result = kubectl("create", "-n", namespace, "-f", "-", input=_manifest_yaml(case.manifest), check=False)
    assert result.returncode == 0, result.stderr


_SERVER_BAD = [case for case in BAD_CASES if case.server is not None]


def test_every_server_side_rule_has_a_case() -> None:
    assert {case.server for case in _SERVER_BAD} == {"schema", "cel", "strict"}


@pytest.mark.parametrize("case", _SERVER_BAD, ids=lambda c: c.id)
def test_bad_manifest_is_rejected_with_the_rule(
    kubectl: Kubectl, crds_installed: None, namespace: str, case: BadCase
) -> None:
    result = kubectl("create", "-n", namespace, "-f", "-", input=_manifest_yaml(case.manifest), check=False)
    assert result.returncode != 0, f"accepted: {result.stdout}"
    assert case.server_message in result.stderr, result.stderr
    # A refusal never repeats a password it was given (the user-info case carries one).
    assert "hunter2-canary" not in result.stderr


@pytest.mark.parametrize("case", UPDATE_CASES, ids=lambda c: c.id)
def test_update(kubectl: Kubectl, crds_installed: None, namespace: str, case: UpdateCase, tmp_path: Path) -> None:
    kubectl("create", "-n", namespace, "-f", "-", input=_manifest_yaml(case.old))
    kind, name = case.old["kind"].lower(), case.old["metadata"]["name"]
    for _ in range(5):
        # An operator running in this session may write the object between our read and our update.
        current = json.loads(kubectl("get", "-n", namespace, kind, name, "-o", "json").stdout)
        updated = dict(
            case.new, metadata={**case.new["metadata"], "resourceVersion": current["metadata"]["resourceVersion"]}
        )
        result = kubectl("replace", "-n", namespace, "-f", "-", input=_manifest_yaml(updated), check=False)
        if "the object has been modified" not in result.stderr:
            break
    if case.server_message is None:
        assert result.returncode == 0, result.stderr
    else:
        assert result.returncode != 0, f"accepted: {result.stdout}"
        assert case.server_message in result.stderr, result.stderr


def test_printer_columns(kubectl: Kubectl, crds_installed: None, namespace: str) -> None:
    example = REPO_ROOT / "examples" / "driver-stats"
    kubectl("create", "-n", namespace, "-f", str(example / "featurestoreproject.yaml"))
    kubectl("create", "-n", namespace, "-f", str(example / "materializationjob-backfill.yaml"))
    projects = kubectl("get", "-n", namespace, "fsp").stdout.splitlines()
    assert projects[0].split() == ["NAME", "PROJECT", "READY", "REASON", "REVISION", "AGE"]
    assert projects[1].split()[:2] == ["driver-stats", "driver_stats"]
    wide = kubectl("get", "-n", namespace, "fsp", "-o", "wide").stdout.splitlines()
    assert wide[0].split() == ["NAME", "PROJECT", "READY", "REASON", "REVISION", "AGE", "MESSAGE"]
    jobs = kubectl("get", "-n", namespace, "mj", "-o", "wide").stdout.splitlines()
    assert jobs[0].split() == [
        "NAME",
        "PROJECT",
        "MODE",
        "PHASE",
        "REASON",
        "START",
        "END",
        "MLFLOW",
        "RUN",
        "AGE",
        "MESSAGE",
    ]
    assert jobs[1].split()[:3] == ["driver-stats-backfill-2026-11-02", "driver-stats", "Range"]
