"""Which training pods the admission webhook configures for a project."""

from typing import Annotated

from pydantic import Field

from .common import CamelModel


class InjectionConfig(CamelModel):
    """Admission webhook settings. A pod labelled `featurelineage.io/inject: <name>` gets the project
    of that resource name; `featurelineage.io/inject: "true"` gets the namespace-default project."""

    enabled: bool = True
    """Inject this project's client configuration into pods that ask for it."""
    namespace_default: bool = False
    """This project is the one pods labelled `featurelineage.io/inject: "true"` get."""
    mount_path: Annotated[str, Field(max_length=1024, pattern=r"^/")] = "/etc/feast"
    """Absolute directory where feature_store.yaml is mounted in the pod."""
