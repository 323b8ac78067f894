"""The featurelineage.io/v1alpha1 API: pydantic models of both resources and their CRDs.

The models are the one source of truth: `crds/` is generated from them (`feast-lineage crds`).
"""

from .apply_policy import (
    APPROVE_PLAN_ANNOTATION,
    APPROVE_VERB,
    ApplyImpact,
    ApplyPolicy,
    ImpactedModelVersion,
)
from .cel import CelRule
from .common import (
    CamelModel,
    Condition,
    LocalObjectReference,
    MlflowRunRef,
    ObjectMeta,
    SecretKeyRef,
    StatusModel,
    TimeWindow,
)
from .crd import diff_crds, generate_crds, write_crds
from .feature_store import FeatureStoreConfig, RegistryConfig, SecretEnvVar, StoreConfig
from .feature_store_project import (
    AppliedChanges,
    FeatureStoreProject,
    FeatureStoreProjectSpec,
    FeatureStoreProjectStatus,
    InjectionStatus,
    LastApply,
    LastMaterialization,
    PendingApply,
    ScheduleStatus,
    UnmaterializableView,
)
from .group import (
    API_VERSION,
    CATEGORY,
    FEATURE_STORE_PROJECT_KIND,
    FEATURE_STORE_PROJECT_PLURAL,
    FEATURE_STORE_PROJECT_SHORT_NAME,
    GROUP,
    MATERIALIZATION_JOB_KIND,
    MATERIALIZATION_JOB_PLURAL,
    MATERIALIZATION_JOB_SHORT_NAME,
    VERSION,
)
from .injection import InjectionConfig
from .manifest import ManifestError, validate_manifest, validation_message
from .materialization_job import (
    MaterializationJob,
    MaterializationJobSpec,
    MaterializationJobStatus,
    Provenance,
    ViewRows,
)
from .mlflow_config import MlflowConfig, MlflowCredentials
from .repo import GitRepo, ImageRepo, RepoSource
from .runner import EnvVar, ResourceRequirements, RunnerConfig
from .schedule import MaterializationSchedule

__all__ = [
    "API_VERSION",
    "APPROVE_PLAN_ANNOTATION",
    "APPROVE_VERB",
    "CATEGORY",
    "FEATURE_STORE_PROJECT_KIND",
    "FEATURE_STORE_PROJECT_PLURAL",
    "FEATURE_STORE_PROJECT_SHORT_NAME",
    "GROUP",
    "MATERIALIZATION_JOB_KIND",
    "MATERIALIZATION_JOB_PLURAL",
    "MATERIALIZATION_JOB_SHORT_NAME",
    "VERSION",
    "AppliedChanges",
    "ApplyImpact",
    "ApplyPolicy",
    "CamelModel",
    "CelRule",
    "Condition",
    "EnvVar",
    "FeatureStoreConfig",
    "FeatureStoreProject",
    "FeatureStoreProjectSpec",
    "FeatureStoreProjectStatus",
    "GitRepo",
    "ImageRepo",
    "ImpactedModelVersion",
    "InjectionConfig",
    "InjectionStatus",
    "LastApply",
    "LastMaterialization",
    "LocalObjectReference",
    "ManifestError",
    "MaterializationJob",
    "MaterializationJobSpec",
    "MaterializationJobStatus",
    "MaterializationSchedule",
    "MlflowConfig",
    "MlflowCredentials",
    "MlflowRunRef",
    "ObjectMeta",
    "PendingApply",
    "Provenance",
    "RegistryConfig",
    "RepoSource",
    "ResourceRequirements",
    "RunnerConfig",
    "ScheduleStatus",
    "SecretEnvVar",
    "SecretKeyRef",
    "StatusModel",
    "StoreConfig",
    "TimeWindow",
    "UnmaterializableView",
    "ViewRows",
    "diff_crds",
    "generate_crds",
    "validate_manifest",
    "validation_message",
    "write_crds",
]
