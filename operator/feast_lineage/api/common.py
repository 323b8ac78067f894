"""Building blocks shared by both resources."""

from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
"""Names of Kubernetes objects such as Secrets, ConfigMaps and custom resources."""
DNS_SUBDOMAIN_MAX_LENGTH = 253
SECRET_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"
"""Keys of Secrets and ConfigMaps."""
ENV_VAR_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
"""Portable environment variable names."""
CONDITION_TYPE_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
CONDITION_REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"

Timestamp = AwareDatetime
"""An RFC 3339 time with an offset; the API server stores `date-time` strings in that form."""

ObjectName = Annotated[str, Field(min_length=1, max_length=DNS_SUBDOMAIN_MAX_LENGTH, pattern=DNS_SUBDOMAIN_PATTERN)]

FeatureViewName = Annotated[str, Field(min_length=1, max_length=255)]
"""Name of a Feast feature view."""
FEATURE_VIEW_LIST: dict[str, Any] = {"x-kubernetes-list-type": "set"}
"""Schema extras of feature view lists: each name at most once."""


class CamelModel(BaseModel):
    """Base of the API models: camelCase on the wire, snake_case in Python, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_attribute_docstrings=True,
    )

    def to_k8s(self) -> dict[str, Any]:
        """The JSON-ready form the API server expects: camelCase keys, unset optionals left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class StatusModel(CamelModel):
    """Status model: written by the operator, so fields a newer version added are ignored, not fatal."""

    model_config = ConfigDict(extra="ignore")

    @classmethod
    def from_k8s(cls, raw: Mapping[str, Any] | None) -> Self:
        """The status as stored; a top-level field that does not parse (an older writer, a hand edit)
        is dropped rather than stopping every later reconcile."""
        data = dict(raw or {})
        while True:
            try:
                return cls.model_validate(data)
            except ValidationError as error:
                bad = {str(e["loc"][0]) for e in error.errors() if e["loc"] and e["loc"][0] in data}
                if not bad:
                    raise
                for key in bad:
                    del data[key]

    @classmethod
    def field_names(cls) -> frozenset[str]:
        """The status's top-level fields as stored (camelCase)."""
        return frozenset(field.alias or name for name, field in cls.model_fields.items())


class RunnerImageRecord(StatusModel):
    """Which image a runner Job ran, as far as Kubernetes could tell."""

    image: str | None = None
    """Image the runner container ran."""
    image_id: str | None = None
    """The image as the container runtime identified it (pod status imageID, a digest);
    "unknown" when the runtime did not report it."""


class ObjectMeta(BaseModel):
    """The part of Kubernetes object metadata that the operator reads; the rest is kept as is."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="allow", use_attribute_docstrings=True
    )

    name: str | None = None
    """Name of the object, unique in its namespace."""
    generate_name: str | None = None
    """Prefix the API server completes to a unique name when `name` is not set."""
    namespace: str | None = None
    """Namespace of the object."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Labels of the object."""
    annotations: dict[str, str] = Field(default_factory=dict)
    """Annotations of the object."""
    generation: int | None = None
    """Sequence number of the desired state, set by the API server."""
    uid: str | None = None
    """Unique id of the object, set by the API server."""


class LocalObjectReference(CamelModel):
    """Reference to an object in the same namespace."""

    name: ObjectName
    """Name of the referenced object."""


class SecretKeyRef(CamelModel):
    """Reference to one key of a Secret in the same namespace."""

    name: ObjectName
    """Name of the Secret."""
    key: Annotated[str, Field(min_length=1, max_length=253, pattern=SECRET_KEY_PATTERN)]
    """Key inside the Secret."""


class ConfigMapKeyRef(CamelModel):
    """Reference to one key of a ConfigMap in the same namespace."""

    name: ObjectName
    """Name of the ConfigMap."""
    key: Annotated[str, Field(min_length=1, max_length=253, pattern=SECRET_KEY_PATTERN)]
    """Key inside the ConfigMap."""


class Condition(StatusModel):
    """One aspect of the object's current state, in the shape of metav1.Condition."""

    type: Annotated[str, Field(max_length=316, pattern=CONDITION_TYPE_PATTERN)]
    """Type of the condition in CamelCase, e.g. Ready, Reconciling, Stalled."""
    status: Literal["True", "False", "Unknown"]
    """Whether the condition holds."""
    observed_generation: Annotated[int, Field(ge=0)] | None = None
    """metadata.generation the condition was set for."""
    last_transition_time: Timestamp
    """Last time the status changed."""
    reason: Annotated[str, Field(min_length=1, max_length=1024, pattern=CONDITION_REASON_PATTERN)]
    """Machine-readable CamelCase reason for the last transition."""
    message: Annotated[str, Field(max_length=32768)]
    """Human-readable details about the transition; may be empty."""


class MlflowRunRef(StatusModel):
    """An MLflow run that recorded an operation."""

    experiment: str | None = None
    """Name of the MLflow experiment."""
    run_id: str | None = None
    """Id of the MLflow run."""
    run_url: str | None = None
    """Address of the run in the MLflow UI."""


class TimeWindow(StatusModel):
    """A half-open time range [start, end) of event timestamps."""

    start: Timestamp | None = None
    """Beginning of the window."""
    end: Timestamp | None = None
    """End of the window."""


def check_unique(values: Iterable[str], what: str) -> None:
    """Mirror of the API server's list-type checks: one entry per key."""
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"duplicate {what} {value!r}")
        seen.add(value)


def _unique_condition_types(value: list[Condition]) -> list[Condition]:
    check_unique((condition.type for condition in value), "condition type")
    return value


Conditions = Annotated[
    list[Condition],
    AfterValidator(_unique_condition_types),
    # One entry per type, so patches merge conditions by type.
    Field(json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]}),
]
