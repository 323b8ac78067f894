"""Write feature_repo/driver_stats.parquet: hourly stats of five drivers over one week.

The data is deterministic (fixed seed, fixed week), so the committed file can be
regenerated and compared. Run: python make_data.py
"""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

DRIVER_IDS = (1001, 1002, 1003, 1004, 1005)
WEEK_START = datetime(2026, 11, 2, tzinfo=UTC)
"""First hour of the data (a Monday); the last row is one hour before WEEK_END."""
WEEK_END = WEEK_START + timedelta(days=7)
SEED = 20261102
OUTPUT = Path(__file__).parent / "feature_repo" / "driver_stats.parquet"


def driver_stats() -> pd.DataFrame:
    rng = np.random.default_rng(SEED)
    hours = pd.date_range(WEEK_START, WEEK_END, freq="h", inclusive="left")
    frame = pd.DataFrame(
        [(driver_id, hour) for hour in hours for driver_id in DRIVER_IDS],
        columns=["driver_id", "event_timestamp"],
    )
    rows = len(frame)
    # Two decimals keep the file small: few distinct values compress well.
    frame["conv_rate"] = rng.uniform(0.0, 1.0, rows).round(2).astype("float32")
    frame["acc_rate"] = rng.uniform(0.5, 1.0, rows).round(2).astype("float32")
    # A daily average changes once a day, not every hour.
    daily_trips = {(driver_id, day): int(rng.integers(5, 60)) for day in range(7) for driver_id in DRIVER_IDS}
    days = (frame["event_timestamp"] - pd.Timestamp(WEEK_START)).dt.days
    frame["avg_daily_trips"] = [
        daily_trips[(driver_id, day)] for driver_id, day in zip(frame["driver_id"], days, strict=True)
    ]
    frame["avg_daily_trips"] = frame["avg_daily_trips"].astype("int64")
    frame["created"] = frame["event_timestamp"] + pd.Timedelta(minutes=5)
    frame["driver_id"] = frame["driver_id"].astype("int64")
    return frame[["driver_id", "event_timestamp", "created", "conv_rate", "acc_rate", "avg_daily_trips"]]


def main() -> None:
    table = pa.Table.from_pandas(driver_stats(), preserve_index=False)
    # Microsecond timestamps and no pandas metadata keep the file at a few KB.
    table = table.cast(
        pa.schema(
            [
                pa.field(f.name, pa.timestamp("us", tz="UTC")) if pa.types.is_timestamp(f.type) else f
                for f in table.schema
            ]
        )
    ).replace_schema_metadata(None)
    pq.write_table(table, OUTPUT, compression="zstd")
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
