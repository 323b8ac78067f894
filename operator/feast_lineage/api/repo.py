"""Where the Feast feature repo (the Python definitions) comes from."""

import re
from typing import Annotated, Self
from urllib.parse import urlsplit

from pydantic import ConfigDict, Field, field_validator, model_validator

from .cel import CelRule, validations
from .common import CamelModel, ConfigMapKeyRef, LocalObjectReference

REPO_EXACTLY_ONE = CelRule(
    rule="[has(self.configMap), has(self.git), has(self.image)].filter(x, x).size() == 1",
    message="exactly one of repo.configMap, repo.git or repo.image must be set",
)
GIT_PATH_RELATIVE = CelRule(
    rule="!self.path.startsWith('/') && !self.path.split('/').exists(s, s == '..')",
    message="repo.git.path must be a relative path without '..' segments",
)

GIT_URL_PATTERN = r"^((https?|ssh|git|file)://|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:)"
ABSOLUTE_PATH_PATTERN = r"^/"


class GitRepo(CamelModel):
    """A feature repo checked out from Git by the runner."""

    model_config = ConfigDict(json_schema_extra=validations(GIT_PATH_RELATIVE))

    url: Annotated[str, Field(max_length=2048, pattern=GIT_URL_PATTERN)]
    """Clone URL: https://, http://, ssh://, git://, file:// or user@host:path."""
    revision: Annotated[str, Field(min_length=1, max_length=255)] = "main"
    """Branch, tag or commit to check out."""
    path: Annotated[str, Field(min_length=1, max_length=1024)] = "."
    """Directory of the feature repo inside the Git tree, relative to its root."""
    secret_ref: LocalObjectReference | None = None
    """Secret with `username` and `password`, or `token`, keys for a private repository over https,
    or `ssh-privatekey` for ssh."""
    ca_bundle_ref: ConfigMapKeyRef | None = None
    """CA certificates (PEM) an https server's certificate is verified against, besides the system's."""
    known_hosts_ref: ConfigMapKeyRef | None = None
    """known_hosts lines of the ssh server: required for ssh URLs, whose host keys are always verified."""

    @field_validator("url")
    @classmethod
    def _parsable(cls, value: str) -> str:
        # The schema's pattern admits what no URL parser does (https://[x): say so here, as InvalidSpec.
        if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", value):
            try:
                parts = urlsplit(value)
                _ = parts.port
            except ValueError as error:
                raise ValueError(f"not a valid URL: {error}") from None
            if parts.scheme != "file" and not parts.hostname:
                raise ValueError("not a valid URL: it names no host")
        return value

    @model_validator(mode="after")
    def _relative_path(self) -> Self:
        if self.path.startswith("/") or ".." in self.path.split("/"):
            raise ValueError(GIT_PATH_RELATIVE.message)
        return self


class ImageRepo(CamelModel):
    """A feature repo baked into a container image."""

    image: Annotated[str, Field(min_length=1, max_length=1024)] | None = None
    """Image that holds the repo; the runner image when not set."""
    path: Annotated[str, Field(max_length=1024, pattern=ABSOLUTE_PATH_PATTERN)]
    """Absolute path of the feature repo inside the image."""


class RepoSource(CamelModel):
    """Source of the feature repo; exactly one of the fields is set."""

    model_config = ConfigDict(json_schema_extra=validations(REPO_EXACTLY_ONE))

    config_map: LocalObjectReference | None = None
    """ConfigMap whose keys are the files of the repo (a flat repo: keys cannot contain '/')."""
    git: GitRepo | None = None
    """Git repository that holds the repo."""
    image: ImageRepo | None = None
    """Container image that holds the repo."""

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if sum(source is not None for source in (self.config_map, self.git, self.image)) != 1:
            raise ValueError(REPO_EXACTLY_ONE.message)
        return self
