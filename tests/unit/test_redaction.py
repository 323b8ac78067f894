"""The one redaction function: every form a secret takes in echoed text, and nothing else."""

from __future__ import annotations

import json
import logging
import re
from urllib.parse import quote, quote_plus

import pytest

from feast_lineage.redaction import MASK, MIN_SECRET_LENGTH, SecretValues, install_log_redaction, redact, redact_data

SECRET = 'C4n4ry/"p@ss W0rd"+&\\end'


@pytest.mark.parametrize(
    "form",
    [
        SECRET,
        quote(SECRET, safe=""),
        quote(SECRET),
        quote_plus(SECRET),
        re.sub("%[0-9A-F]{2}", lambda match: match.group(0).lower(), quote(SECRET, safe="")),
        json.dumps(SECRET)[1:-1],
        json.dumps(SECRET, ensure_ascii=False)[1:-1],
        repr(SECRET)[1:-1],
    ],
    ids=["plain", "url-encoded", "url-path", "url-plus", "url-lower-hex", "json", "json-unicode", "repr"],
)
def test_every_echoed_form_is_masked(form: str) -> None:
    text = f"store type {form} is not known"
    assert redact(text, [SECRET]) == f"store type {MASK} is not known"


def test_a_secret_inside_a_json_document_is_masked() -> None:
    document = json.dumps({"error": f"bad value {SECRET}", "nested": [SECRET]})
    redacted = redact(document, [SECRET])
    assert "C4n4ry" not in redacted and "W0rd" not in redacted
    assert json.loads(redacted)["error"] == f"bad value {MASK}"


def test_url_user_info_is_masked_without_knowing_it() -> None:
    assert redact("GET https://alice:hunter22@mlflow.example/api failed") == (
        "GET https://***@mlflow.example/api failed"
    )
    assert redact("see https://mlflow.example/#/experiments/1 and mailto:a@b.example") == (
        "see https://mlflow.example/#/experiments/1 and mailto:a@b.example"
    )


def test_short_values_are_not_looked_for() -> None:
    short = "x" * (MIN_SECRET_LENGTH - 1)
    assert redact(f"the value {short} stays", [short]) == f"the value {short} stays"
    four = "w" * MIN_SECRET_LENGTH
    assert redact(f"the value {four}!", [four]) == f"the value {MASK}!"


def test_overlapping_secrets_leave_no_part_of_either() -> None:
    # "abcdef" and "cdefgh" overlap in "abcdefgh": masking one first must not reveal the other's tail.
    assert redact("x abcdefgh y", ["abcdef", "cdefgh"]) == f"x {MASK} y"
    # One secret containing another, in either order.
    assert redact("k=tok-long-value", ["long", "tok-long-value"]) == f"k={MASK}"
    assert redact("k=tok-long-value", ["tok-long-value", "long"]) == f"k={MASK}"
    # Repeated and adjacent occurrences.
    assert redact("aaaaaaaa|bbbb", ["aaaa", "bbbb"]) == f"{MASK}|{MASK}"


def test_lines_of_a_multi_line_secret_are_masked_alone() -> None:
    key = "-----BEGIN KEY-----\nMIIEowIBAAKCAQEAzX1n0pq\nAbCdEfGhIjKlMnOpQrStUv\n-----END KEY-----\n"
    assert redact("parse error near MIIEowIBAAKCAQEAzX1n0pq", [key]) == f"parse error near {MASK}"


def test_structures_are_redacted_throughout() -> None:
    data = {"message": f"x {SECRET}", "list": [SECRET, 3, None], "nested": {"k": SECRET}}
    assert redact_data(data, [SECRET]) == {"message": f"x {MASK}", "list": [MASK, 3, None], "nested": {"k": MASK}}


def test_known_values_are_bounded_and_shared() -> None:
    values = SecretValues(limit=2)
    values.learn(["first-secret", None, "", "ab", "second-secret", "third-secret"])
    assert values.snapshot() == ("second-secret", "third-secret")
    assert values.redact("first-secret second-secret") == f"first-secret {MASK}"


def test_text_without_secrets_is_unchanged() -> None:
    text = "applied main (commit 0123456789ab): 2 object(s) changed"
    assert redact(text, ["not-in-it"]) == text


def test_log_records_are_redacted_as_they_are_made(caplog: pytest.LogCaptureFixture) -> None:
    values = SecretValues()
    values.learn([SECRET])
    factory = logging.getLogRecordFactory()
    install_log_redaction(values)
    install_log_redaction(values)  # idempotent: one wrapper
    try:
        logger = logging.getLogger("test.redaction")
        with caplog.at_level(logging.INFO, logger="test.redaction"):
            logger.info("value %s and %r", SECRET, {"k": SECRET})
            try:
                raise ValueError(f"bad {SECRET}")
            except ValueError:
                logger.exception("failed")
    finally:
        logging.setLogRecordFactory(factory)
    text = caplog.text
    assert "C4n4ry" not in text
    assert f"value {MASK} and {{'k': '{MASK}'}}" in text
    assert f"ValueError: bad {MASK}" in text
