"""Property-based API testing with schemathesis: thousands of generated requests, valid and
invalid, and not one server error or answer that the OpenAPI document does not describe.

Every operation is driven with a credential that may actually use it, so that the requests get
past authentication into the vault: the registrar for writes, a duty officer for reads, finds
and exports (exports are refused by policy: that refusal is a documented 403), an investigator
for cases, the custodian for erasure, the auditor for the ledger, metrics and alerts. Public
routes are called without credentials. Generation is derandomized (a fixed seed): the same
requests every run. The collection and purpose are drawn from this vault's (the document names
them), and every other generated ID number is swapped for one the vault holds, so that many
requests reach policy decisions, decryption and the ledger rather than stopping at validation.
"""

from __future__ import annotations

import json
import zlib
from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from custodes.api.deps import SESSION_COOKIE
from tests.api.conftest import PEOPLE, Api

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES = {GenerationMode.POSITIVE: 90, GenerationMode.NEGATIVE: 60}
MIN_REQUESTS = 2_000
CALLER_BY_PATH = {
    "/v1/records/{collection}": "reg-1",
    "/v1/subjects/shred": "dpo-1",
    "/v1/cases": "inv-1",
}


def _caller(path: str) -> str:
    if path in CALLER_BY_PATH:
        return CALLER_BY_PATH[path]
    if path.startswith("/v1/records/"):
        return "duty-1"
    if path.startswith("/v1/cases/"):
        return "sup-1"
    return "aud-1"


def _known_subjects(case: Any) -> None:
    """Swap every other generated ID number for one the vault holds, so that requests get past
    ID-number validation into policy decisions, decryption and the ledger. The choice is a
    function of the generated body, so runs stay reproducible."""
    body = case.body
    if not isinstance(body, dict):
        return
    pick = zlib.crc32(json.dumps(body, sort_keys=True, default=str).encode())
    if pick % 2:
        return
    if isinstance(body.get("subject"), str):
        body["subject"] = PEOPLE[pick % len(PEOPLE)].id_number
    if pick % 4 == 0:  # and half of those without the optional (mostly unknown) names
        for optional in ("fields", "case", "assigned", "break_glass", "justification"):
            body.pop(optional, None)
    if isinstance(body.get("subjects"), list) and body["subjects"]:
        body["subjects"] = [
            PEOPLE[(pick + i) % len(PEOPLE)].id_number for i, _ in enumerate(body["subjects"])
        ]


def _drive(
    api: Api,
    operation: Any,
    mode: GenerationMode,
    sent: Counter[str],
    failures: list[str],
) -> None:
    """Send up to ``EXAMPLES[mode]`` generated requests to one operation; record failures."""
    document = api.app.openapi()
    public = "security" not in document["paths"][operation.path][operation.method.lower()]
    headers = None if public else api.headers(_caller(operation.path))
    checks = [*CHECKS, negative_data_rejection] if mode is GenerationMode.NEGATIVE else CHECKS

    # Fixed credentials: nothing to generate for the security schemes (the bearer wins over
    # the cookie, which is there only so that it is not generated either).
    fixed = {} if public else {"headers": headers, "cookies": {SESSION_COOKIE: "unused"}}

    @given(case=operation.as_strategy(generation_mode=mode, **fixed))
    @settings(
        max_examples=EXAMPLES[mode],
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        if mode is GenerationMode.POSITIVE:
            _known_subjects(case)
        response = case.call()
        sent[operation.label] += 1
        try:
            case.validate_response(response, checks=checks)
        except FailureGroup as exc:  # collected, all reported at the end
            failures.append(f"{operation.label} [{mode}]: {exc}".strip()[:2000])

    try:
        run()
    except Unsatisfiable:
        assert mode is GenerationMode.NEGATIVE  # an operation without inputs has no invalid ones


@pytest.mark.slow
def test_generated_requests_get_no_server_errors_and_match_the_document(sqlite_api: Api) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", sqlite_api.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    sent: Counter[str] = Counter()
    failures: list[str] = []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _drive(sqlite_api, operation, mode, sent, failures)
    assert not failures, "\n\n".join(failures[:20])
    assert sum(sent.values()) >= MIN_REQUESTS, sent
