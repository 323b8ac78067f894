"""Names of the API group, its version and its kinds."""

from typing import Final

GROUP: Final = "featurelineage.io"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
CATEGORY: Final = "featurelineage"

FEATURE_STORE_PROJECT_KIND: Final = "FeatureStoreProject"
FEATURE_STORE_PROJECT_PLURAL: Final = "featurestoreprojects"
FEATURE_STORE_PROJECT_SHORT_NAME: Final = "fsp"

MATERIALIZATION_JOB_KIND: Final = "MaterializationJob"
MATERIALIZATION_JOB_PLURAL: Final = "materializationjobs"
MATERIALIZATION_JOB_SHORT_NAME: Final = "mj"
