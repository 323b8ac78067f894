"""The operator's log format: which object a line is about, and the whole logger name."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap

import pytest

from feast_lineage.controller.logs import TextFormatter, object_fields

LOGGER = "feast_lineage.controller.materialization_reconciler"


def record(logger: str = LOGGER, extra: dict[str, object] | None = None) -> logging.LogRecord:
    return logging.getLogger(logger).makeRecord(
        logger, logging.INFO, __file__, 1, "created materialize Job %s", ("nightly-materialize",), None, extra=extra
    )


def test_text_lines_name_the_object_and_the_whole_logger() -> None:
    line = TextFormatter().format(record(extra=object_fields("team-a", "nightly", 3)))
    assert f" {LOGGER} [INFO    ] [team-a/nightly] created materialize Job nightly-materialize" in line
    assert line.startswith("[")


def test_text_lines_of_kopf_name_the_object_too() -> None:
    kopf_ref = {"apiVersion": "featurelineage.io/v1alpha1", "kind": "X", "namespace": "team-a", "name": "drivers"}
    line = TextFormatter().format(record("kopf.objects", {"k8s_ref": kopf_ref}))
    assert "kopf.objects [INFO    ] [team-a/drivers] created" in line


@pytest.mark.parametrize(
    "extra, prefix",
    [
        (object_fields(None, "cluster-wide"), "[cluster-wide] "),
        (None, ""),
        (object_fields(None, None), ""),
    ],
)
def test_text_lines_without_a_namespace_or_an_object(extra: dict[str, object] | None, prefix: str) -> None:
    line = TextFormatter().format(record(extra=extra))
    assert line.endswith(f"[INFO    ] {prefix}created materialize Job nightly-materialize")


def test_the_record_itself_is_left_alone() -> None:
    original = record(extra=object_fields("team-a", "nightly"))
    TextFormatter().format(original)
    assert original.getMessage() == "created materialize Job nightly-materialize"


def run_operator_logging(log_json: bool) -> list[str]:
    """Configure logging as `feast-lineage run` does, in a fresh interpreter, and log: the lines that
    come out."""
    script = textwrap.dedent(
        f"""
        import logging
        from feast_lineage.controller.logs import object_fields
        from feast_lineage.controller.main import configure_logging

        configure_logging({log_json!r})
        logging.getLogger("aiohttp.access").info("GET /healthz 200")  # every liveness probe: not logged
        logging.getLogger({LOGGER!r}).info("created %s", "a-job", extra=object_fields("team-a", "nightly", 3))
        kopf_ref = {{"namespace": "team-a", "name": "drivers"}}
        logging.getLogger("kopf.objects").warning("Timer failed", extra={{"k8s_ref": kopf_ref}})
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=dict(os.environ), check=True
    )
    return result.stderr.splitlines()


def test_json_lines_carry_the_object_and_the_logger() -> None:
    ours, kopfs = (json.loads(line) for line in run_operator_logging(log_json=True))
    assert ours["message"] == "created a-job"
    assert (ours["k8s_namespace"], ours["k8s_name"], ours["generation"]) == ("team-a", "nightly", 3)
    assert ours["logger"] == LOGGER and ours["severity"] == "info"
    assert kopfs["object"] == {"namespace": "team-a", "name": "drivers"} and kopfs["logger"] == "kopf.objects"


def test_operator_text_lines() -> None:
    ours, kopfs = run_operator_logging(log_json=False)
    assert ours.endswith(f"] {LOGGER} [INFO    ] [team-a/nightly] created a-job")
    assert kopfs.endswith("] kopf.objects [WARNING ] [team-a/drivers] Timer failed")
