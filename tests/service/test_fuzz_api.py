"""Schemathesis against the in-process API (real SQLite store, real filesystem queue): a few hundred
generated requests, valid and invalid, must never get a 5xx, and every answer must match OpenAPI
(its status code listed for the route, its body the schema of that status, its content type).
Requests carry an admin's Bearer token (the schema's security scheme)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from api.main import create_app
from proxns_testkit import api_client, embedded_settings

#: Generated cases per operation (12 operations: about 500 requests in all, ~15 s on 2 cores).
EXAMPLES_PER_OPERATION = 50
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance, content_type_conformance]


def test_fuzzed_requests_never_get_a_5xx_and_always_match_the_schema(tmp_path: Path) -> None:
    service = embedded_settings(tmp_path)
    # schemathesis's ASGI transport sends Host: testserver
    app = create_app(service.model_copy(update={"allowed_hosts": [*service.allowed_hosts, "testserver"]}))
    with api_client(app) as client:  # runs the app's lifespan around the whole run
        auth = {
            "Authorization": client.headers["Authorization"]
        }  # the token the OpenAPI's bearer scheme asks for
        client.post("/api/jobs", json={"dataset": "synthetic", "arch": "vgg", "depth": 11, "epochs": 2})
        # /api/events is a stream that never ends: each example would wait out the request timeout
        # (tests/service/test_events.py covers it, with its 404s and 422s)
        schema = schemathesis.openapi.from_asgi("/openapi.json", app).exclude(path="/api/events")
        sent: list[tuple[str, int]] = []

        for result in schema.get_all_operations():
            operation = result.ok()

            @settings(
                max_examples=EXAMPLES_PER_OPERATION,
                derandomize=True,
                database=None,
                deadline=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy())
            def run(case: schemathesis.Case) -> None:
                response = case.call(headers=auth)
                sent.append((case.operation.label, response.status_code))
                case.validate_response(response, checks=CHECKS)

            run()

    server_errors = [s for s in sent if s[1] >= 500]
    summary = {
        "requests": len(sent),
        "server_errors": len(server_errors),
        "operations": len({s[0] for s in sent}),
        "statuses": {code: sum(1 for _, c in sent if c == code) for code in sorted({c for _, c in sent})},
    }
    print("fuzz summary:", json.dumps(summary))
    assert not server_errors
    assert len(sent) >= 200, summary


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__, "-s", "-q"])
