"""schemathesis against the agent's own OpenAPI: whatever it sends, never a 5xx, and every
answer matches the documented schema (status codes, content types, bodies)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from hall_agent.agent import Agent
from hall_agent.api.app import create_app
from hall_agent.contract.config import Config

ROOT = Path(__file__).resolve().parents[2]

# schemathesis reads the schema at collection time, so the agent is built here, on a
# throwaway data dir, with the test catalogue.
_DATA = tempfile.mkdtemp(prefix="hall-fuzz-")
AGENT = Agent(Config.model_validate({
    "hall": {"id": "fz-citizen", "name": "福州市市民服务中心",
             "catalog": str(ROOT / "tests/data/services.toml")},
    "agent": {"data_dir": _DATA}}))
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(AGENT))


@schema.exclude(path="/v1/events").parametrize()
@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_api_never_errors_and_keeps_its_contract(case: Any) -> None:
    response = case.call()
    assert response.status_code < 500, response.text
    # A schema-valid request may still name a window, service or ticket this hall does
    # not have: that is a 4xx naming the field, by design, which this check would flag.
    case.validate_response(response, excluded_checks=[positive_data_acceptance])
