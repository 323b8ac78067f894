"""The pydantic models: the case table, defaults, names on the wire and error reporting."""

from typing import Any

import pytest

from feast_lineage.api import (
    FeatureStoreProject,
    FeatureStoreProjectSpec,
    GitRepo,
    LocalObjectReference,
    ManifestError,
    MaterializationJob,
    RegistryConfig,
    RepoSource,
    validate_manifest,
)
from feast_lineage.api.feature_store import FeatureStoreConfig
from feast_lineage.api.manifest import field_path
from tests.api_cases import (
    BAD_CASES,
    FULL_PROJECT_SPEC,
    GOOD_CASES,
    MINIMAL_JOB,
    MINIMAL_PROJECT,
    REMOVE,
    UPDATE_CASES,
    BadCase,
    GoodCase,
    changed,
)


@pytest.mark.parametrize("case", GOOD_CASES, ids=lambda case: case.id)
def test_good_manifest_validates(case: GoodCase) -> None:
    validate_manifest(case.manifest)


@pytest.mark.parametrize("case", BAD_CASES, ids=lambda case: case.id)
def test_bad_manifest_names_field_and_rule(case: BadCase) -> None:
    with pytest.raises(ManifestError) as raised:
        validate_manifest(case.manifest)
    assert any(path == case.field and case.message in message for path, message in raised.value.errors), (
        f"expected {case.field}: ...{case.message}..., got:\n{raised.value}"
    )


def test_case_ids_and_names_are_unique() -> None:
    ids = [case.id for case in GOOD_CASES] + [case.id for case in BAD_CASES] + [case.id for case in UPDATE_CASES]
    assert len(ids) == len(set(ids))
    names = [case.manifest["metadata"]["name"] for case in GOOD_CASES]
    names += [case.manifest["metadata"]["name"] for case in BAD_CASES]
    assert len(names) == len(set(names))


def test_server_checked_cases_say_what_the_server_says() -> None:
    for case in BAD_CASES:
        assert (case.server is None) == (case.server_message == ""), case.id


def test_update_cases_are_valid_objects() -> None:
    for case in UPDATE_CASES:
        validate_manifest(case.old)
        validate_manifest(case.new)


def test_minimal_project_gets_defaults() -> None:
    resource = validate_manifest(MINIMAL_PROJECT)
    assert isinstance(resource, FeatureStoreProject)
    spec = resource.spec
    assert spec.feature_store.provider == "local"
    assert spec.feature_store.registry.registry_type == "file"
    assert spec.feature_store.entity_key_serialization_version == 3
    assert spec.feature_store.online_store is None
    assert spec.mlflow.enabled and spec.mlflow.auto_log and spec.mlflow.log_operations
    assert not spec.mlflow.auto_log_entity_df
    assert spec.mlflow.entity_df_max_rows == 100000
    assert spec.mlflow.ops_experiment_suffix == "-feast-ops"
    assert (spec.mlflow.request_timeout_seconds, spec.mlflow.max_retries) == (10, 1)
    assert spec.materialization is None
    assert spec.runner.backoff_limit == 0 and spec.runner.image is None
    assert spec.injection.enabled and not spec.injection.namespace_default
    assert spec.injection.mount_path == "/etc/feast"


def test_schedule_defaults() -> None:
    manifest = changed(MINIMAL_PROJECT, {"spec.materialization": {"schedule": "0 * * * *"}})
    resource = validate_manifest(manifest)
    assert isinstance(resource, FeatureStoreProject)
    schedule = resource.spec.materialization
    assert schedule is not None
    assert schedule.time_zone == "UTC" and schedule.concurrency_policy == "Forbid"
    assert not schedule.suspend and schedule.feature_views == []
    assert (schedule.successful_runs_history_limit, schedule.failed_runs_history_limit) == (3, 1)


def test_minimal_job_gets_defaults() -> None:
    manifest = changed(MINIMAL_JOB, {"spec.mode": REMOVE, "spec.startTime": REMOVE})
    resource = validate_manifest(manifest)
    assert isinstance(resource, MaterializationJob)
    assert resource.spec.mode == "Incremental"
    assert resource.spec.backoff_limit == 0 and resource.spec.feature_views == []


def test_manifest_round_trips_in_camel_case() -> None:
    manifest = changed(MINIMAL_PROJECT, {"spec": FULL_PROJECT_SPEC})
    resource = validate_manifest(manifest)
    dumped = resource.to_k8s()
    assert dumped["spec"]["featureStore"]["secretEnv"][0]["secretKeyRef"] == {"name": "feast-db", "key": "password"}
    assert dumped["spec"]["mlflow"]["requestTimeoutSeconds"] == 5
    assert dumped["spec"]["runner"]["resources"]["limits"] == {"cpu": 1, "memory": "1Gi"}
    assert validate_manifest(dumped) == resource


def test_times_serialize_as_rfc3339_utc() -> None:
    resource = validate_manifest(MINIMAL_JOB)
    spec = resource.to_k8s()["spec"]
    assert (spec["startTime"], spec["endTime"]) == ("2026-11-02T00:00:00Z", "2026-11-09T00:00:00Z")


def test_models_are_built_in_python_by_field_name() -> None:
    spec = FeatureStoreProjectSpec(
        project="driver_stats",
        repo=RepoSource(git=GitRepo(url="https://git.example.com/r.git")),
        feature_store=FeatureStoreConfig(registry=RegistryConfig(path="/data/registry.db")),
    )
    assert spec.repo.git is not None and spec.repo.git.revision == "main"
    assert spec.to_k8s()["featureStore"]["registry"] == {"registryType": "file", "path": "/data/registry.db"}


def test_snake_case_keys_are_not_accepted_in_manifests() -> None:
    manifest = changed(MINIMAL_PROJECT, {"spec.feature_store": MINIMAL_PROJECT["spec"]["featureStore"]})
    with pytest.raises(ManifestError) as raised:
        validate_manifest(manifest)
    assert ("spec.feature_store", "Extra inputs are not permitted") in raised.value.errors


def test_cross_field_rule_raises_in_python_too() -> None:
    with pytest.raises(ValueError, match=r"exactly one of repo\.configMap"):
        RepoSource(config_map=LocalObjectReference(name="a"), git=GitRepo(url="https://git.example.com/r.git"))


def test_manifest_error_lists_one_line_per_field() -> None:
    manifest: dict[str, Any] = changed(MINIMAL_PROJECT, {"spec.project": "a-b", "spec.repo": {}})
    with pytest.raises(ManifestError) as raised:
        validate_manifest(manifest)
    lines = str(raised.value).splitlines()
    assert lines == [
        "spec.project: String should match pattern '^[A-Za-z0-9][A-Za-z0-9_]*$'",
        "spec.repo: exactly one of repo.configMap, repo.git or repo.image must be set",
    ]


@pytest.mark.parametrize(
    "manifest, field",
    [
        ({"kind": "FeatureStoreProject"}, "apiVersion"),
        ({"apiVersion": "featurelineage.io/v1alpha1", "kind": "Pod"}, "kind"),
        ({"apiVersion": "featurelineage.io/v1alpha1", "kind": "FeatureStoreProject"}, "spec"),
    ],
)
def test_type_meta_is_checked(manifest: dict[str, Any], field: str) -> None:
    with pytest.raises(ManifestError) as raised:
        validate_manifest(manifest)
    assert raised.value.errors[0][0] == field


def test_field_paths_look_like_the_api_servers() -> None:
    assert field_path(("spec", "runner", "env", 0, "name")) == "spec.runner.env[0].name"
    assert field_path(()) == "<root>"
