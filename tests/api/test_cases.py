"""Cases over HTTP, on both backends: dual control, organization boundaries, closing."""

from __future__ import annotations

from custodes.sim import Person
from tests.api.conftest import PEOPLE, Api

SUSPECT = PEOPLE[20]
OTHER = PEOPLE[21]
STAY = {"hotel": "Hanting", "check_in": "2026-02-28T22:00:00+08:00"}


def _read(api: Api, accessor: str, case: str | None, person: Person = SUSPECT) -> int:
    body = {"subject": person.id_number, "purpose": "criminal_investigation", "case": case}
    return api.post("/v1/records/hotel_stays/get", accessor, body).status_code


def test_dual_control_through_http(api: Api) -> None:
    body = {"subject": SUSPECT.id_number, "values": STAY, "purpose": "registration"}
    assert api.post("/v1/records/hotel_stays", "reg-1", body).status_code == 201

    opened = api.post(
        "/v1/cases", "inv-1", {"purpose": "criminal_investigation", "subjects": [SUSPECT.id_number]}
    )
    assert opened.status_code == 201, opened.text
    case = opened.json()
    assert case["assigned"] == ["inv-1"] and case["approved_by"] is None and case["open"]
    # Subjects are shown as ledger pseudonyms, never as ID numbers.
    assert SUSPECT.id_number not in opened.text
    assert case["subjects"] == [api.vault.pseudonym(SUSPECT.id_number)]
    case_id = case["case_id"]

    assert _read(api, "inv-1", None) == 403  # no case
    assert _read(api, "inv-1", case_id) == 403  # not approved yet
    assert api.events()[-1].decision == "deny"

    # Dual control: the investigator cannot approve their own case ...
    own = api.post(f"/v1/cases/{case_id}/approve", "inv-1", None)
    assert own.status_code == 403
    assert api.events()[-1].action == "case_approve" and api.events()[-1].decision == "deny"
    # ... nor can a supervisor of another organization.
    assert api.post(f"/v1/cases/{case_id}/approve", "sup-9", None).status_code == 403

    approved = api.post(f"/v1/cases/{case_id}/approve", "sup-1", None)
    assert approved.status_code == 200, approved.text
    assert approved.json()["approved_by"] == "sup-1"
    assert approved.json()["approver_role"] == "supervisor"

    assert _read(api, "inv-1", case_id) == 200
    assert _read(api, "inv-2", case_id) == 403  # not assigned to the case
    assert _read(api, "inv-1", case_id, OTHER) == 403  # the case does not name them

    closed = api.post(f"/v1/cases/{case_id}/close", "inv-1", None)
    assert closed.status_code == 200 and closed.json()["open"] is False
    assert _read(api, "inv-1", case_id) == 403


def test_a_case_is_shown_to_its_organization_and_oversight(api: Api) -> None:
    opened = api.post(
        "/v1/cases", "inv-2", {"purpose": "criminal_investigation", "subjects": [OTHER.id_number]}
    )
    case_id = opened.json()["case_id"]
    assert api.get(f"/v1/cases/{case_id}", "sup-1").status_code == 200
    assert api.get(f"/v1/cases/{case_id}", "aud-1").status_code == 200
    refused = api.get(f"/v1/cases/{case_id}", "sup-9")
    assert refused.status_code == 403
    assert refused.json()["error"]["missing"] == ["org"]
    assert api.get(f"/v1/cases/{case_id}", None).status_code == 401


def test_unknown_case_is_404(api: Api) -> None:
    assert api.get("/v1/cases/C-AAAAAAAAAA", "sup-1").status_code == 404
    assert api.post("/v1/cases/C-AAAAAAAAAA/approve", "sup-1", None).status_code == 404


def test_opening_a_case_needs_a_grant_for_its_purpose(api: Api) -> None:
    body = {"purpose": "criminal_investigation", "subjects": [SUSPECT.id_number]}
    response = api.post("/v1/cases", "duty-1", body)
    assert response.status_code == 403
    assert response.json()["error"]["missing"] == ["grant"]
    assert api.events()[-1].action == "case_open"


def test_assignees_must_be_of_the_organization(api: Api) -> None:
    body = {
        "purpose": "criminal_investigation",
        "subjects": [SUSPECT.id_number],
        "assigned": ["sup-9"],
    }
    assert api.post("/v1/cases", "inv-1", body).status_code == 422


def test_a_case_can_be_time_boxed(api: Api) -> None:
    body = {"purpose": "criminal_investigation", "subjects": [OTHER.id_number], "ttl_hours": 48}
    case = api.post("/v1/cases", "inv-1", body).json()
    assert case["expires_at"] == "2026-03-04T02:00:00Z"
