"""A canary secret value and the forms in which it must never be found."""

from __future__ import annotations

import json
import uuid
from urllib.parse import quote, quote_plus


def new_canary() -> str:
    """Unique per test, with characters that URL encoding changes."""
    return f"cnry{uuid.uuid4().hex[:12]}+Zq/w"


def canary_forms(canary: str) -> dict[str, str]:
    """Plain, URL-encoded (both ways) and JSON-escaped: what a leak looks like in echoed text."""
    return {
        "plain": canary,
        "url-encoded": quote(canary, safe=""),
        "url-plus": quote_plus(canary),
        "json-escaped": json.dumps(canary)[1:-1],
        "json-escaped-slash": canary.replace("/", "\\/"),
    }


def leaks(text: str, canary: str) -> list[str]:
    """The forms of ``canary`` found in ``text`` (empty: none)."""
    return [name for name, form in canary_forms(canary).items() if form in text]
