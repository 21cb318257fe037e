"""The OpenAPI 3.1 document of the JSON API v1, served at ``GET /api/v1/openapi.json``. No Flask.

It describes what the routes really answer (``tests/test_openapi.py`` runs Schemathesis against
it through the app: no 500s, no answer outside its schema): the documents API
(:mod:`wiki.views.api`), search (:mod:`wiki.views.search`), matching (:mod:`wiki.views.match`)
and, when that part is installed, similar documents (:mod:`wiki.views.similar`). Writes accept a
bearer token (:mod:`wiki.tokens`) and require one once a token exists.
"""

from __future__ import annotations

from typing import Any

from . import documents as d

OPENAPI_VERSION = "3.1.0"
KINDS = sorted(d.KINDS)
JSON = "application/json"


def _nullable(schema: dict) -> dict:
    kind = schema.get("type")
    return {**schema, "type": [kind, "null"]} if isinstance(kind, str) else schema


def _string(**extra) -> dict:
    return {"type": "string", **extra}


def _integer(minimum: int | None = None, maximum: int | None = None, **extra) -> dict:
    schema: dict[str, Any] = {"type": "integer", **extra}
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    return schema


def _object(properties: dict, required: tuple[str, ...] | None = None, **extra) -> dict:
    return {"type": "object", "properties": properties,
            "required": list(properties if required is None else required), **extra}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str, headers: dict | None = None) -> dict:
    out: dict[str, Any] = {"description": description, "content": {JSON: {"schema": schema}}}
    if headers:
        out["headers"] = headers
    return out


def _error(description: str) -> dict:
    return _json(_ref("Error"), description)


SCHEMAS: dict[str, dict] = {
    "Error": _object({
        "error": _string(description="What went wrong, for a person."),
    }, additionalProperties=True, description="Any error. A 422 also has `fields` "
                                              "(field → message); a 412 or 428 has "
                                              "`current_revision`."),
    "Kind": _string(enum=KINDS),
    "DocumentSummary": _object({
        "id": _string(examples=["PM-7"]),
        "kind": _ref("Kind"),
        "title": _string(),
        "url": _string(format="uri"),
        "status": _string(),
        "severity": _nullable(_string()),
        "date": _nullable(_string(format="date")),
        "summary": _string(description="The first paragraph of the summary (Markdown)."),
        "revision": _string(),
    }),
    "DocumentList": _object({
        "total": _integer(0),
        "limit": _integer(1),
        "offset": _integer(0),
        "documents": {"type": "array", "items": _ref("DocumentSummary")},
    }),
    "Document": _object({
        "id": _string(),
        "kind": _ref("Kind"),
        "title": _string(),
        "url": _string(format="uri"),
        "front_matter": {"type": "object", "additionalProperties": True,
                         "description": "Every front-matter field, unknown ones included "
                                        "(see docs/content-format.md)."},
        "body": _string(description="Markdown."),
        "revision": _nullable(_string(description="Content hash; send it as If-Match to "
                                                  "update.")),
    }),
    "DocumentCreate": _object({
        "kind": _ref("Kind"),
        "front_matter": {"type": "object", "additionalProperties": True,
                         "description": "At least a `title`. `id`, `created` and `updated` are "
                                        "set by the wiki."},
        "body": _string(description="Markdown."),
        "author": _string(),
        "message": _string(description="What changed, for the revision."),
    }, required=("kind",)),
    "DocumentUpdate": _object({
        "kind": _ref("Kind"),
        "front_matter": {"type": "object", "additionalProperties": True},
        "body": _string(),
        "author": _string(),
        "message": _string(),
    }, required=()),
    "SearchResult": _object({
        "id": _string(),
        "kind": _ref("Kind"),
        "title": _string(),
        "url": _string(format="uri"),
        "score": _nullable({"type": "number"}),
        "snippet": _string(description="HTML: escaped text, matches in <mark>."),
        "section": _nullable(_string()),
    }),
    "SearchResults": _object({
        "total": _integer(0),
        "results": {"type": "array", "items": _ref("SearchResult")},
        "facets": {"type": "object", "additionalProperties": {
            "type": "array", "items": _object({"value": _string(), "count": _integer(0)})}},
        "suggestion": _nullable(_string(description="A “did you mean” query.")),
    }),
    "MatchRequest": _object({
        "text": _string(description="Log lines, an error message or a stack trace."),
    }),
    "Evidence": _object({
        "line": _integer(1),
        "text": _string(),
        "pattern": _string(),
    }),
    "Match": _object({
        "id": _string(),
        "title": _string(),
        "url": _nullable(_string(format="uri")),
        "confidence": _string(enum=["confirmed", "partial"]),
        "evidence": {"type": "array", "items": _ref("Evidence")},
    }),
    "MatchResults": _object({
        "matches": {"type": "array", "items": _ref("Match")},
        "lines": _integer(0),
    }),
    "SimilarRequest": _object({
        "text": _string(description="The words of an incident, an error or a log."),
        "title": _string(),
        "services": {"type": "array", "items": _string()},
        "tags": {"type": "array", "items": _string()},
        "exclude": {"type": "array", "items": _string(), "description": "Ids to leave out."},
        "before": _string(description="ISO 8601 date or date-time: only what happened "
                                      "before."),
        "kind": _ref("Kind"),
        "limit": _integer(1, 50),
    }, required=("text",)),
    "Reason": _object({
        "kind": _string(),
        "text": _string(),
        "values": {"type": "array", "items": _string()},
    }),
    "Similar": _object({
        "id": _string(),
        "title": _string(),
        "url": _nullable(_string(format="uri")),
        "kind": _ref("Kind"),
        "score": {"type": "number"},
        "date": _nullable(_string()),
        "reasons": {"type": "array", "items": _ref("Reason")},
    }),
    "SimilarResults": _object({
        "results": {"type": "array", "items": _ref("Similar")},
        "messages": {"type": "array", "items": _string()},
    }),
}

_ID_PARAM = {"name": "id", "in": "path", "required": True, "schema": _string(),
             "description": "A document id, e.g. PM-7 or SIG-3 (any case)."}
_WRITE_SECURITY = [{"bearerAuth": []}, {}]
_ETAG = {"ETag": {"description": "The revision, quoted.", "schema": _string()}}


def _query(name: str, schema: dict, description: str = "", **extra) -> dict:
    param = {"name": name, "in": "query", "required": False, "schema": schema, **extra}
    if description:
        param["description"] = description
    return param


def _documents() -> dict:
    return {
        "/api/v1/documents": {
            "get": {
                "operationId": "listDocuments",
                "summary": "List documents, newest first",
                "tags": ["documents"],
                "parameters": [
                    _query("kind", _ref("Kind")),
                    _query("limit", _integer(1, 200, default=50)),
                    _query("offset", _integer(0, 10**9, default=0)),
                ],
                "responses": {"200": _json(_ref("DocumentList"), "A page of documents."),
                              "400": _error("A parameter is out of range.")},
            },
            "post": {
                "operationId": "createDocument",
                "summary": "Create a document (its id is assigned)",
                "tags": ["documents"],
                "security": _WRITE_SECURITY,
                "requestBody": {"required": True,
                                "content": {JSON: {"schema": _ref("DocumentCreate")}}},
                "responses": {
                    "201": _json(_ref("Document"), "Created.", {
                        **_ETAG, "Location": {"schema": _string(format="uri")}}),
                    "400": _error("The body is not a JSON object of the right shape."),
                    "401": _error("Tokens exist and none (or a wrong one) was sent."),
                    "413": _error("The request is over WIKI_MAX_REQUEST_BYTES."),
                    "422": _error("The document is not valid; `fields` says why."),
                },
            },
        },
        "/api/v1/documents/{id}": {
            "get": {
                "operationId": "getDocument",
                "summary": "One document: front matter and Markdown body",
                "tags": ["documents"],
                "parameters": [_ID_PARAM],
                "responses": {"200": _json(_ref("Document"), "The document.", _ETAG),
                              "404": _error("There is no such document.")},
            },
            "put": {
                "operationId": "updateDocument",
                "summary": "Replace a document's front matter and body",
                "tags": ["documents"],
                "security": _WRITE_SECURITY,
                "parameters": [_ID_PARAM, {
                    "name": "If-Match", "in": "header", "required": False, "schema": _string(),
                    "description": "The revision the change is based on (`*`: any). Without "
                                   "it: 428."}],
                "requestBody": {"required": True,
                                "content": {JSON: {"schema": _ref("DocumentUpdate")}}},
                "responses": {
                    "200": _json(_ref("Document"), "Saved.", _ETAG),
                    "400": _error("The body is not a JSON object of the right shape."),
                    "401": _error("Tokens exist and none (or a wrong one) was sent."),
                    "404": _error("There is no such document."),
                    "412": _error("The document changed since that revision."),
                    "413": _error("The request is over WIKI_MAX_REQUEST_BYTES."),
                    "422": _error("The document is not valid; `fields` says why."),
                    "428": _error("If-Match is missing."),
                },
            },
        },
    }


def _search() -> dict:
    filters = [_query(name, {"type": "array", "items": _string()}, f"Filter on {name}.",
                      style="form", explode=True)
               for name in ("severity", "status", "service", "tag", "year", "root_cause")]
    return {"/api/v1/search": {"get": {
        "operationId": "search",
        "summary": "Full-text search with filters and facet counts",
        "tags": ["search"],
        "parameters": [
            _query("q", _string(), "The query (see /search/help for the syntax)."),
            _query("kind", _ref("Kind")),
            _query("limit", _integer(1, 100, default=20)),
            _query("offset", _integer(0, 10_000, default=0)),
            _query("sort", _string(enum=["relevance", "date"])),
            _query("facets", _string(enum=["1", "0", "true", "false"]),
                   "0 to skip the facet counts."),
            *filters,
        ],
        "responses": {"200": _json(_ref("SearchResults"), "Results, best first."),
                      "400": _error("A parameter is not valid."),
                      "503": _error("The index is being rebuilt.")},
    }}}


def _match() -> dict:
    return {"/api/v1/match": {"post": {
        "operationId": "match",
        "summary": "Which bug signatures a paste shows (confirmed first, then partial)",
        "tags": ["signatures"],
        "requestBody": {"required": True, "content": {JSON: {"schema": _ref("MatchRequest")}}},
        "responses": {"200": _json(_ref("MatchResults"), "The matches."),
                      "400": _error("No text, or it is empty."),
                      "413": _error("The paste is over WIKI_MATCH_MAX_BYTES."),
                      "415": _error("Not JSON.")},
    }}}


def _similar() -> dict:
    params = [_query("limit", _integer(1, 50)), _query("kind", _ref("Kind")),
              _query("before", _string(), "ISO 8601 date or date-time."),
              _query("exclude", {"type": "array", "items": _string()}, "Ids to leave out.",
                     style="form", explode=True)]
    responses = {"200": _json(_ref("SimilarResults"), "Similar documents, best first."),
                 "400": _error("A parameter is not valid.")}
    return {
        "/api/v1/similar": {"post": {
            "operationId": "similar",
            "summary": "Documents similar to a text, with the reasons",
            "tags": ["similar"],
            "requestBody": {"required": True,
                            "content": {JSON: {"schema": _ref("SimilarRequest")}}},
            "responses": {**responses, "415": _error("Not JSON.")},
        }},
        "/api/v1/documents/{id}/similar": {"get": {
            "operationId": "documentSimilar",
            "summary": "Documents similar to a document",
            "tags": ["similar"],
            "parameters": [_ID_PARAM, *params],
            "responses": {**responses, "404": _error("There is no such document.")},
        }},
    }


def build(server_url: str, endpoints: set[str] | frozenset[str], version: str) -> dict:
    """The OpenAPI document for an app whose view endpoints are ``endpoints`` (parts that are
    not installed are left out), served from ``server_url``."""
    paths: dict[str, dict] = {}
    if "api.list_documents" in endpoints:
        paths.update(_documents())
    if "search.api_search" in endpoints:
        paths.update(_search())
    if "match.api_match" in endpoints:
        paths.update(_match())
    if "similar.api_similar" in endpoints:
        paths.update(_similar())
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Postmortem Wiki API",
            "version": version,
            "description": "Read and write postmortems and bug signatures, search them, match "
                           "a log against the signatures and find similar incidents. Errors are "
                           "`{\"error\": …}` with the HTTP status. Writes take JSON only and, "
                           "once an API token exists (`wiki token create NAME`), need "
                           "`Authorization: Bearer <token>`.",
        },
        "servers": [{"url": server_url.rstrip("/") or "/"}],
        "tags": [{"name": "documents"}, {"name": "search"}, {"name": "signatures"},
                 {"name": "similar"}],
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearerAuth": {
                "type": "http", "scheme": "bearer",
                "description": "A token from `wiki token create NAME`."}},
        },
    }
