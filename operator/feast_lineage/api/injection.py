"""Which training pods the admission webhook configures for a project, and with what."""

from typing import Annotated

from pydantic import Field, field_validator

from .common import CamelModel, check_unique

VolumeName = Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]


class InjectionConfig(CamelModel):
    """Admission webhook settings. A pod labelled `featurelineage.io/inject: <name>` gets the client
    configuration of the project of that resource name in its own namespace;
    `featurelineage.io/inject: "true"` gets the namespace's default project. Only new pods are
    configured: a change here reaches pods created after it."""

    enabled: bool = True
    """Inject this project's client configuration into pods that ask for it."""
    namespace_default: bool = False
    """This project is the one pods labelled `featurelineage.io/inject: "true"` get."""
    mount_path: Annotated[str, Field(max_length=1024, pattern=r"^/")] = "/etc/feast"
    """Absolute directory where feature_store.yaml is mounted in the pod."""
    volumes: list[VolumeName] = Field(
        default_factory=list, max_length=16, json_schema_extra={"x-kubernetes-list-type": "set"}
    )
    """Names of spec.runner.volumes that clients also get, read-only at the runner's mount path: a file
    registry or a sqlite store on a shared volume is unreadable otherwise. Volumes the namespace's Pod
    Security level forbids (hostPath under baseline or restricted) are left out and the pod says why."""
    experiment_name: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    """MLFLOW_EXPERIMENT_NAME of injected pods; MLflow's default experiment when not set."""

    @field_validator("volumes")
    @classmethod
    def _unique_volumes(cls, value: list[str]) -> list[str]:
        check_unique(value, "injection volume")
        return value
