"""The operator's ``pass done`` lines, as `feast-lineage run --log-json --log-level=debug` writes them,
are what the tests' ``passes`` reads: by object, by when the pass started, by how it ended."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

from feast_lineage.api import FEATURE_STORE_PROJECT_KIND, MATERIALIZATION_JOB_KIND
from tests.cluster_helpers import passes


def operator_log(level: str) -> str:
    """Logging configured as `feast-lineage run` does, in a fresh interpreter; three passes end."""
    script = textwrap.dedent(
        f"""
        from feast_lineage.controller.main import configure_logging
        from feast_lineage.controller.pass_log import pass_done

        configure_logging(True, {level!r})
        pass_done({FEATURE_STORE_PROJECT_KIND!r}, "team-a", "drivers", "ok", 1000.0)
        pass_done({FEATURE_STORE_PROJECT_KIND!r}, "team-a", "drivers", "settled", 2000.0)
        pass_done({MATERIALIZATION_JOB_KIND!r}, "team-a", "drivers", "finished", 3000.0)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=dict(os.environ), check=True
    )
    return result.stderr


def test_the_lines_are_read_by_object_start_and_outcome() -> None:
    log = operator_log("debug")
    project = [r["outcome"] for r in passes(log, FEATURE_STORE_PROJECT_KIND, "team-a", "drivers", since=0)]
    assert project == ["ok", "settled"]
    later = passes(log, FEATURE_STORE_PROJECT_KIND, "team-a", "drivers", since=1500)
    assert [(r["outcome"], r["started"]) for r in later] == [("settled", 2000.0)]
    assert not passes(log, FEATURE_STORE_PROJECT_KIND, "team-a", "drivers", since=0, outcomes={"gone"})
    assert [r["outcome"] for r in passes(log, MATERIALIZATION_JOB_KIND, "team-a", "drivers", since=0)] == ["finished"]
    assert not passes(log, FEATURE_STORE_PROJECT_KIND, "team-b", "drivers", since=0)
    assert not passes(log, FEATURE_STORE_PROJECT_KIND, "team-a", "drivers", since=time.time())


def test_at_the_default_level_there_are_none() -> None:
    assert operator_log("info") == ""
