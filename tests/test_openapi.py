"""The OpenAPI document (wiki/openapi.py) at ``/api/v1/openapi.json``, and Schemathesis against
it through the WSGI app: no 500s, and every answer within its documented status codes, content
type and schema. Bounded (a few examples per operation) so it runs in well under a minute."""

from __future__ import annotations

import shutil

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import DEMO_CONTENT, make_app
from wiki.openapi import build

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
EXAMPLES = 25


@pytest.fixture(scope="module")
def api_app(tmp_path_factory):
    root = tmp_path_factory.mktemp("openapi")
    shutil.copytree(DEMO_CONTENT, root / "content")
    return make_app(root / "content", root / "data")


@pytest.fixture(scope="module")
def api_schema(api_app):
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", api_app)


def operations(api_schema) -> list:
    ops = [result.ok() for result in api_schema.get_all_operations()]
    assert len(ops) >= 6
    return ops


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                         ids=lambda m: m.value)
def test_api_conforms_to_its_openapi_document(api_schema, mode):
    """Every operation, with data valid (positive) and invalid (negative) for its schema."""
    for operation in operations(api_schema):

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case):
            case.call_and_validate(checks=CHECKS)

        try:
            check()
        except Unsatisfiable:  # nothing can be invalid (e.g. one free-form string in the path)
            assert mode is GenerationMode.NEGATIVE, operation.label
        except Exception as exc:
            raise AssertionError(f"{operation.label} ({mode.value}): {exc}") from exc


# --------------------------------------------------------------------------------------------
# The document itself


def test_the_document_is_served(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200 and response.is_json
    spec = response.get_json()
    assert spec["openapi"].startswith("3.")
    assert spec["servers"] == [{"url": "http://localhost"}]
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "description": spec["components"]["securitySchemes"]
        ["bearerAuth"]["description"]}
    paths = spec["paths"]
    assert {"get", "post"} <= set(paths["/api/v1/documents"])
    assert {"get", "put"} <= set(paths["/api/v1/documents/{id}"])
    assert "get" in paths["/api/v1/search"] and "post" in paths["/api/v1/match"]
    for path, method in (("/api/v1/documents", "post"), ("/api/v1/documents/{id}", "put")):
        assert {"bearerAuth": []} in paths[path][method]["security"]
        assert "401" in paths[path][method]["responses"]


def test_every_api_route_of_the_app_is_described(app):
    spec = build("http://x", frozenset(app.view_functions), "0")
    described = {(p, m.upper()) for p, ops in spec["paths"].items() for m in ops}
    covered = {"api.list_documents", "api.get_document", "api.create_document",
               "api.replace_document", "search.api_search", "match.api_match",
               "similar.api_similar", "similar.api_document_similar"}
    for rule in app.url_map.iter_rules():
        if rule.endpoint not in covered:
            continue
        path = rule.rule.replace("<ident>", "{id}")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method) in described, (rule.rule, method)


def test_parts_that_are_not_installed_are_left_out():
    spec = build("http://x", frozenset({"api.list_documents"}), "0")
    assert set(spec["paths"]) == {"/api/v1/documents", "/api/v1/documents/{id}"}


def test_the_server_url_follows_base_url(content_dir, tmp_path):
    app = make_app(content_dir, tmp_path / "data", BASE_URL="https://wiki.example.com")
    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    assert spec["servers"] == [{"url": "https://wiki.example.com"}]
