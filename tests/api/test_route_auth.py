"""Every route in the OpenAPI document is public, or answers 401 without credentials and 403
with the credentials of someone who may not use it.

The table below must name every non-public operation: a route added without a row fails
``test_every_route_is_public_or_in_the_table``, so nobody can add one without deciding who may
call it and proving the others cannot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.api.conftest import PEOPLE, Api, identity

PUBLIC = {
    ("GET", "/v1/health"),
    ("GET", "/v1/ledger/checkpoint"),
    ("GET", "/v1/ledger/consistency"),
    ("GET", "/v1/ledger/cosignatures"),
}
PERSON = PEOPLE[35]
GET_BODY = {"subject": PERSON.id_number, "purpose": "identity_check"}
UNKNOWN_ALERT = "0" * 24


@dataclass(frozen=True)
class Probe:
    """A minimal valid request to a route, and whose credential is the wrong one for it."""

    wrong: str  # an accessor who must get 403
    why: str
    path: str  # may name {case_id} and {seq}, filled in from the test's vault
    body: dict[str, Any] | None = None
    params: dict[str, Any] = field(default_factory=dict)


TABLE: dict[tuple[str, str], Probe] = {
    ("POST", "/v1/records/{collection}"): Probe(
        "aud-1",
        "oversight roles have no grant",
        "/v1/records/identity",
        {"subject": PERSON.id_number, "values": identity(PERSON), "purpose": "registration"},
    ),
    ("POST", "/v1/records/{collection}/get"): Probe(
        "aud-1", "oversight roles have no grant", "/v1/records/identity/get", GET_BODY
    ),
    ("POST", "/v1/records/{collection}/find"): Probe(
        "aud-1",
        "oversight roles have no grant",
        "/v1/records/identity/find",
        {"field": "phone", "value": PERSON.phone, "purpose": "identity_check"},
    ),
    ("POST", "/v1/records/{collection}/export"): Probe(
        "aud-1",
        "oversight roles have no grant",
        "/v1/records/identity/export",
        {"purpose": "statistics"},
    ),
    ("POST", "/v1/subjects/shred"): Probe(
        "aud-1",
        "oversight roles have no grant",
        "/v1/subjects/shred",
        {"subject": PERSON.id_number, "purpose": "erasure"},
    ),
    ("POST", "/v1/cases"): Probe(
        "aud-1",
        "oversight roles open no cases",
        "/v1/cases",
        {"purpose": "criminal_investigation", "subjects": [PERSON.id_number]},
    ),
    ("GET", "/v1/cases/{case_id}"): Probe(
        "sup-9", "another organization's case", "/v1/cases/{case_id}"
    ),
    ("POST", "/v1/cases/{case_id}/approve"): Probe(
        "clerk-1", "a hotel clerk approves no police case", "/v1/cases/{case_id}/approve"
    ),
    ("POST", "/v1/cases/{case_id}/close"): Probe(
        "clerk-1", "neither opener, assignee nor approver", "/v1/cases/{case_id}/close"
    ),
    ("GET", "/v1/ledger/entries/{seq}"): Probe(
        "sup-1", "another accessor's entry", "/v1/ledger/entries/{seq}"
    ),
    ("GET", "/metrics"): Probe("clerk-1", "not an oversight role", "/metrics"),
    ("GET", "/v1/alerts"): Probe("clerk-1", "not an oversight role", "/v1/alerts"),
    ("GET", "/v1/alerts/{alert_id}"): Probe(
        "clerk-1", "not an oversight role", f"/v1/alerts/{UNKNOWN_ALERT}"
    ),
    ("POST", "/v1/alerts/{alert_id}/ack"): Probe(
        "clerk-1",
        "not an oversight role",
        f"/v1/alerts/{UNKNOWN_ALERT}/ack",
        {"note": "looked into it"},
    ),
}


def _operations(api: Api) -> set[tuple[str, str]]:
    document = api.app.openapi()
    return {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    }


@pytest.fixture(scope="module")
def filled(api: Api) -> dict[str, str]:
    """Values for the path templates: a case opened by inv-1, an entry of duty-1."""
    case = api.post(
        "/v1/cases", "inv-1", {"purpose": "criminal_investigation", "subjects": [PERSON.id_number]}
    )
    assert case.status_code == 201, case.text
    read = api.post("/v1/records/identity/get", "duty-1", GET_BODY)
    assert read.status_code == 200, read.text
    return {"case_id": case.json()["case_id"], "seq": str(api.vault.ledger.size() - 1)}


def _send(api: Api, method: str, probe: Probe, accessor: str | None, filled: dict[str, str]) -> Any:
    headers = api.headers(accessor) if accessor else {}
    return api.client.request(
        method,
        probe.path.format(**filled),
        json=probe.body,
        params=probe.params,
        headers=headers,
    )


def test_every_route_is_public_or_in_the_table(api: Api) -> None:
    operations = _operations(api)
    missing = operations - PUBLIC - set(TABLE)
    assert not missing, f"routes without a row in TABLE (who may call them?): {sorted(missing)}"
    stale = set(TABLE) - operations
    assert not stale, f"rows for routes that no longer exist: {sorted(stale)}"


@pytest.mark.parametrize(("method", "path"), sorted(PUBLIC))
def test_public_routes_need_no_credentials(api: Api, method: str, path: str) -> None:
    params = {"old": 1, "new": 1} if path.endswith("consistency") else {}
    response = api.client.request(method, path, params=params)
    assert response.status_code in (200, 404), response.text  # 404: no checkpoint yet
    assert response.status_code != 404 or path.endswith("checkpoint")


@pytest.mark.parametrize(("method", "path"), sorted(TABLE))
def test_without_credentials_is_401(
    api: Api, filled: dict[str, str], method: str, path: str
) -> None:
    probe = TABLE[(method, path)]
    before = api.vault.ledger.size()
    response = _send(api, method, probe, None, filled)
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "unauthenticated"
    assert api.vault.ledger.size() == before  # nothing decided, nothing recorded


@pytest.mark.parametrize(("method", "path"), sorted(TABLE))
def test_with_the_wrong_credentials_is_403(
    api: Api, filled: dict[str, str], method: str, path: str
) -> None:
    probe = TABLE[(method, path)]
    response = _send(api, method, probe, probe.wrong, filled)
    assert response.status_code == 403, (probe.why, response.text)
    assert response.json()["error"]["code"] == "access_denied"


def test_the_document_marks_exactly_the_non_public_routes_as_secured(api: Api) -> None:
    """The OpenAPI document derives security from the 401 a route declares: hold every route
    to declaring it exactly when it is not public."""
    document = api.app.openapi()
    assert set(document["components"]["securitySchemes"]) == {"bearer", "session"}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            public = (method.upper(), path) in PUBLIC
            assert ("401" in operation["responses"]) is not public, (method, path)
            assert ("security" in operation) is not public, (method, path)


def test_the_document_names_this_vaults_collections_and_purposes(api: Api) -> None:
    document = api.app.openapi()
    (collection,) = document["paths"]["/v1/records/{collection}/get"]["post"]["parameters"]
    assert collection["schema"]["enum"] == list(api.vault.schema.collections)
    get_in = document["components"]["schemas"]["GetIn"]
    assert get_in["properties"]["purpose"]["enum"] == sorted(api.vault.policy.purposes)
    assert get_in["additionalProperties"] is False
