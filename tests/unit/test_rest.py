"""Requests by path: the client's keyword arguments become the API's query parameters."""

from __future__ import annotations

from feast_lineage.controller.rest import query_of


def test_client_keywords_become_camel_case_query_parameters() -> None:
    query = query_of(
        {"label_selector": "a=b", "propagation_policy": "Background", "watch": True, "timeout_seconds": 300}
    )
    assert query == [
        ("labelSelector", "a=b"),
        ("propagationPolicy", "Background"),
        ("watch", "true"),
        ("timeoutSeconds", 300),
    ]


def test_client_options_and_unset_arguments_are_not_sent() -> None:
    assert query_of({"_preload_content": False, "_request_timeout": 5, "resource_version": None}) == []
