"""The Kubernetes Jobs that run Feast for a project."""

import re
from typing import Annotated, Any, Literal

from pydantic import Field, PlainValidator, WithJsonSchema, field_validator

from .common import ENV_VAR_NAME_PATTERN, CamelModel, check_unique

QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)


def _parse_quantity(value: object) -> int | str:
    # One validator instead of an int | str union, so errors name the field, not a union branch.
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(QUANTITY_PATTERN, value) is not None:
        return value
    raise ValueError(f"quantity {value!r} should be an integer or match '{QUANTITY_PATTERN}'")


Quantity = Annotated[
    int | str,
    PlainValidator(_parse_quantity),
    # The canonical int-or-string form of resource.Quantity in CRDs.
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": QUANTITY_PATTERN,
            "x-kubernetes-int-or-string": True,
        }
    ),
]


class ResourceRequirements(CamelModel):
    """CPU and memory of the runner container."""

    requests: dict[str, Quantity] = Field(default_factory=dict)
    """Minimum resources, e.g. {cpu: 100m, memory: 256Mi}."""
    limits: dict[str, Quantity] = Field(default_factory=dict)
    """Maximum resources."""


class EnvVar(CamelModel):
    """A plain (non-secret) environment variable."""

    name: Annotated[str, Field(min_length=1, max_length=128, pattern=ENV_VAR_NAME_PATTERN)]
    """Name of the variable."""
    value: Annotated[str, Field(max_length=32768)] = ""
    """Value of the variable."""


class RunnerConfig(CamelModel):
    """Pod settings of the apply and materialize Jobs."""

    image: Annotated[str, Field(min_length=1, max_length=1024)] | None = None
    """Runner image; the operator's configured runner image when not set."""
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = None
    """Pull policy of the runner image; the Kubernetes default when not set."""
    service_account_name: Annotated[str, Field(min_length=1, max_length=253)] | None = None
    """Service account of the runner pods; the operator's runner account when not set."""
    resources: ResourceRequirements | None = None
    """Resources of the runner container; when not set, requests of 250m CPU and 512Mi memory and
    limits of 2 CPUs and 2Gi memory."""
    node_selector: dict[str, str] = Field(default_factory=dict)
    """Node labels the runner pods must match."""
    tolerations: list[dict[str, Any]] = Field(default_factory=list)
    """Tolerations of the runner pods, as in a pod spec."""
    volumes: list[dict[str, Any]] = Field(default_factory=list)
    """Extra volumes of the runner pods, as in a pod spec (e.g. a PVC for a file registry)."""
    volume_mounts: list[dict[str, Any]] = Field(default_factory=list)
    """Mounts of the extra volumes in the runner container, as in a container spec."""
    backoff_limit: Annotated[int, Field(ge=0, le=10)] = 0
    """Retries of a failed runner pod."""
    active_deadline_seconds: Annotated[int, Field(ge=1)] | None = None
    """Seconds a Job may run before it is stopped (a MaterializationJob's own setting comes first); one
    hour for applies and six hours for materializations when not set."""
    workspace_size_limit: Quantity | None = None
    """Size limit of the /workspace emptyDir (repo checkout, HOME, TMPDIR); 2Gi when not set."""
    env: list[EnvVar] = Field(
        default_factory=list,
        max_length=128,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    """Extra plain environment variables of the runner container; use featureStore.secretEnv for
    secrets."""

    @field_validator("env")
    @classmethod
    def _unique_names(cls, value: list[EnvVar]) -> list[EnvVar]:
        check_unique((entry.name for entry in value), "env name")
        return value
