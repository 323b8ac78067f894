"""Train the driver activity model on features of the driver-stats project.

There is no Feast or MLflow configuration here: the operator's webhook gave this pod the
tracking server (MLFLOW_TRACKING_URI), the project's client feature_store.yaml
(FEAST_FS_YAML_FILE_PATH) and tags saying where the run happened (MLFLOW_RUN_CONTEXT).
Inside the run, Feast tags it with every feature the retrieval used.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
from feast import FeatureStore
from sklearn.linear_model import LinearRegression

FEATURE_SERVICE = "driver_activity_v1"
MODEL_NAME = os.environ.get("MODEL_NAME", "driver-activity")


def entity_rows() -> pd.DataFrame:
    """Each driver at noon of the last four days of the example week (UTC)."""
    times = pd.date_range("2026-11-05T12:00:00Z", periods=4, freq="D")
    return pd.DataFrame(
        [(driver_id, at) for driver_id in (1001, 1002, 1003, 1004, 1005) for at in times],
        columns=["driver_id", "event_timestamp"],
    )


def main() -> None:
    store = FeatureStore(fs_yaml_file=Path(os.environ["FEAST_FS_YAML_FILE_PATH"]))
    with store.mlflow.start_run(run_name="driver-activity-training") as run:
        training = store.get_historical_features(
            features=store.get_feature_service(FEATURE_SERVICE), entity_df=entity_rows()
        ).to_df()
        model = LinearRegression().fit(training[["conv_rate", "acc_rate"]], training["avg_daily_trips"])
        store.mlflow.log_model(model, "model")
        run_id = run.info.run_id
    version = store.mlflow.register_model(f"runs:/{run_id}/model", MODEL_NAME)
    print(json.dumps({"run_id": run_id, "model": MODEL_NAME, "version": str(version.version), "rows": len(training)}))


if __name__ == "__main__":
    main()
