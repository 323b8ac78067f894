"""Feast definitions of the driver-stats example.

feature_store.yaml is not part of the repo: the operator renders it from the
FeatureStoreProject. Every file sits at the top of the repo so the repo can be
shipped as a ConfigMap (whose keys cannot contain '/').
"""

import os
from datetime import timedelta

import pandas as pd
from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.on_demand_feature_view import on_demand_feature_view
from feast.types import Float32, Float64, Int64

driver = Entity(
    name="driver",
    join_keys=["driver_id"],
    value_type=ValueType.INT64,
    description="A driver of the ride-hailing fleet.",
)

# Feast resolves a relative path against the working directory of whoever reads the source: the
# runner reads it from the repo, but a training pod would not find it there. Deployments set
# DRIVER_STATS_DATA to an absolute path on a volume that runner and training pods share.
driver_stats_source = FileSource(
    name="driver_stats_source",
    path=os.environ.get("DRIVER_STATS_DATA", "driver_stats.parquet"),
    timestamp_field="event_timestamp",
    created_timestamp_column="created",
    description="Hourly driver statistics.",
)

driver_hourly_stats = FeatureView(
    name="driver_hourly_stats",
    entities=[driver],
    ttl=timedelta(days=1),
    schema=[
        Field(name="driver_id", dtype=Int64),
        Field(name="conv_rate", dtype=Float32, description="Share of offers the driver converted."),
        Field(name="acc_rate", dtype=Float32, description="Share of offers the driver accepted."),
        Field(name="avg_daily_trips", dtype=Int64, description="Average trips per day."),
    ],
    online=True,
    source=driver_stats_source,
    tags={"team": "driver_performance"},
)

# A slower-moving view over the same source: a week of TTL for the daily trip count.
driver_daily_trips = FeatureView(
    name="driver_daily_trips",
    entities=[driver],
    ttl=timedelta(days=7),
    schema=[
        Field(name="driver_id", dtype=Int64),
        Field(name="avg_daily_trips", dtype=Int64, description="Average trips per day."),
    ],
    online=True,
    source=driver_stats_source,
    tags={"team": "driver_performance"},
)

driver_activity_v1 = FeatureService(
    name="driver_activity_v1",
    features=[
        driver_hourly_stats[["conv_rate", "acc_rate"]],
        driver_daily_trips,
    ],
    description="Features of the driver activity model, version 1.",
    tags={"model": "driver_activity"},
)


# Computed at retrieval time from the hourly stats; `feast materialize` leaves it out, since it
# does not write to the online store.
@on_demand_feature_view(
    sources=[driver_hourly_stats],
    schema=[Field(name="conv_acc_rate", dtype=Float64)],  # share of offers accepted and converted
    mode="pandas",
)
def driver_conversion(inputs: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"conv_acc_rate": inputs["conv_rate"] * inputs["acc_rate"]})


driver_ranking_v1 = FeatureService(
    name="driver_ranking_v1",
    features=[driver_hourly_stats[["conv_rate"]], driver_conversion],
    description="Features of the driver ranking model, version 1.",
    tags={"model": "driver_ranking"},
)
