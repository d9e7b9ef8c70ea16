"""Records over HTTP, on both backends: what goes in comes out to whom policy allows, with a
purpose, and every decision (allowed or denied) is in the ledger."""

from __future__ import annotations

from datetime import datetime

from custodes.sim import generate_people
from tests.api.conftest import PEOPLE, Api, identity

NEW = generate_people(60, seed=12)[50:]  # people the shared vault does not hold yet


def test_put_then_get(api: Api) -> None:
    person = NEW[0]
    body = {"subject": person.id_number, "values": identity(person), "purpose": "registration"}
    put = api.post("/v1/records/identity", "reg-1", body)
    assert put.status_code == 201, put.text
    record_id = put.json()["record_id"]
    assert len(record_id) == 32

    got = api.post(
        "/v1/records/identity/get",
        "duty-1",
        {"subject": person.id_number, "purpose": "identity_check"},
    )
    assert got.status_code == 200, got.text
    (record,) = got.json()["records"]
    assert record["record_id"] == record_id
    assert record["collection"] == "identity"
    # The duty officer's grant covers these three fields only: the phone is not returned.
    assert record["values"] == {
        "name": person.name,
        "id_number": person.id_number,
        "birth_date": person.birth_date.isoformat(),
    }
    last = api.events()[-1]
    assert (last.accessor, last.action, last.decision) == ("duty-1", "get", "allow")
    assert last.purpose == "identity_check"
    assert person.id_number not in repr(last)  # subjects are pseudonyms in the ledger


def test_get_with_named_fields(api: Api) -> None:
    person = PEOPLE[1]
    body = {"subject": person.id_number, "purpose": "identity_check", "fields": ["name"]}
    response = api.post("/v1/records/identity/get", "duty-1", body)
    assert response.status_code == 200
    assert response.json()["records"][0]["values"] == {"name": person.name}


def test_a_field_beyond_the_grant_is_refused_and_recorded(api: Api) -> None:
    person = PEOPLE[2]
    body = {"subject": person.id_number, "purpose": "identity_check", "fields": ["phone"]}
    response = api.post("/v1/records/identity/get", "duty-1", body)
    assert response.status_code == 403
    assert response.json()["error"]["missing"] == ["fields"]
    last = api.events()[-1]
    assert (last.accessor, last.decision, last.fields) == ("duty-1", "deny", ("phone",))


def test_purpose_is_required(api: Api) -> None:
    before = len(api.events())
    person = PEOPLE[3]
    for path, body in [
        ("/v1/records/identity/get", {"subject": person.id_number}),
        ("/v1/records/identity", {"subject": person.id_number, "values": identity(person)}),
        ("/v1/records/identity/find", {"field": "phone", "value": person.phone}),
        ("/v1/records/identity/export", {}),
        ("/v1/subjects/shred", {"subject": person.id_number}),
        ("/v1/cases", {"subjects": [person.id_number]}),
    ]:
        response = api.post(path, "duty-1", body)
        assert response.status_code == 422, path
        assert response.json()["error"]["message"] == "purpose: Field required"
    assert len(api.events()) == before  # a malformed request decides nothing


def test_policy_refusal_is_403_and_ledgered(api: Api) -> None:
    person = PEOPLE[4]
    before = len(api.events())
    # A registrar may write but never read back what it wrote.
    body = {"subject": person.id_number, "purpose": "registration"}
    response = api.post("/v1/records/identity/get", "reg-1", body)
    assert response.status_code == 403
    assert response.json()["error"]["missing"] == ["grant"]
    events = api.events()
    assert len(events) == before + 1
    denied = events[-1]
    assert (denied.accessor, denied.action, denied.decision) == ("reg-1", "get", "deny")
    assert denied.purpose == "registration" and denied.count == 0


def test_unknown_fields_in_a_body_are_refused(api: Api) -> None:
    body = {"subject": PEOPLE[5].id_number, "purpose": "identity_check", "porpose": "typo"}
    response = api.post("/v1/records/identity/get", "duty-1", body)
    assert response.status_code == 422
    assert response.json()["error"]["detail"][0]["loc"] == ["body", "porpose"]


def test_find_by_exact_value(api: Api) -> None:
    person = PEOPLE[6]
    body = {"field": "phone", "value": person.phone, "purpose": "identity_check"}
    response = api.post("/v1/records/identity/find", "duty-1", body)
    assert response.status_code == 200, response.text
    (record,) = response.json()["records"]
    assert record["values"]["id_number"] == person.id_number


def test_find_refuses_wildcards_and_prefixes(api: Api) -> None:
    before = len(api.events())
    for pattern in ("*", "+86138%", "+8613?12345678", PEOPLE[7].phone[:-2] + "*"):
        body = {"field": "phone", "value": pattern, "purpose": "identity_check"}
        response = api.post("/v1/records/identity/find", "duty-1", body)
        assert response.status_code == 422, pattern
        assert "exact values only" in response.json()["error"]["message"]
    assert len(api.events()) == before


def test_find_on_a_field_without_an_index_is_refused(api: Api) -> None:
    body = {"field": "name", "value": PEOPLE[7].name, "purpose": "identity_check"}
    response = api.post("/v1/records/identity/find", "duty-1", body)
    assert response.status_code == 422
    assert "not indexed" in response.json()["error"]["message"]


def test_export_needs_a_grant(api: Api) -> None:
    response = api.post("/v1/records/identity/export", "duty-1", {"purpose": "identity_check"})
    assert response.status_code == 403
    assert api.events()[-1].action == "export"


def test_export_under_an_approved_case(api: Api) -> None:
    person = NEW[1]
    stay = {"hotel": "Jinjiang Inn", "city": "Shanghai", "check_in": "2026-03-01T20:00:00+08:00"}
    reg = {"subject": person.id_number, "values": stay, "purpose": "registration"}
    assert api.post("/v1/records/hotel_stays", "reg-1", reg).status_code == 201
    opened = api.post(
        "/v1/cases", "ana-1", {"purpose": "statistics", "subjects": [person.id_number]}
    )
    assert opened.status_code == 201, opened.text
    case = opened.json()["case_id"]
    body = {"purpose": "statistics", "case": case}
    unapproved = api.post("/v1/records/hotel_stays/export", "ana-1", body)
    assert unapproved.status_code == 403
    assert api.post(f"/v1/cases/{case}/approve", "dir-1", None).status_code == 200
    response = api.post("/v1/records/hotel_stays/export", "ana-1", body)
    assert response.status_code == 200, response.text
    exported = [r["values"] for r in response.json()["records"]]
    # The export is fingerprinted for its recipient: canary rows are mixed in and a time may be
    # spelled 'Z' instead of '+00:00' (the same instant), so compare instants.
    ours = [
        v
        for v in exported
        if v["hotel"] == stay["hotel"]
        and datetime.fromisoformat(v["check_in"]) == datetime.fromisoformat(stay["check_in"])
    ]
    assert len(ours) == 1 and ours[0]["city"] == stay["city"]
    events = api.events()
    assert events[-1].action == "export_mark"  # the fingerprint is on the ledger
    assert events[-2].action == "export" and events[-2].decision == "allow"


def test_break_glass_is_flagged(api: Api) -> None:
    person = PEOPLE[8]
    body = {
        "subject": person.id_number,
        "purpose": "criminal_investigation",
        "break_glass": True,
        "justification": "suspect fleeing, no time for a warrant",
    }
    response = api.post("/v1/records/identity/get", "inv-2", body)
    assert response.status_code == 200, response.text
    last = api.events()[-1]
    assert last.break_glass and last.decision == "allow"
    assert last.justification and "fleeing" not in last.justification  # sealed


def test_shred_under_an_approved_erasure_case(api: Api) -> None:
    person = NEW[2]
    reg = {"subject": person.id_number, "values": identity(person), "purpose": "registration"}
    assert api.post("/v1/records/identity", "reg-1", reg).status_code == 201
    refused = api.post(
        "/v1/subjects/shred", "dpo-1", {"subject": person.id_number, "purpose": "erasure"}
    )
    assert refused.status_code == 403
    case = api.post(
        "/v1/cases", "dpo-1", {"purpose": "erasure", "subjects": [person.id_number]}
    ).json()["case_id"]
    assert api.post(f"/v1/cases/{case}/approve", "dir-1", None).status_code == 200
    body = {"subject": person.id_number, "purpose": "erasure", "case": case}
    response = api.post("/v1/subjects/shred", "dpo-1", body)
    assert response.status_code == 200, response.text
    assert response.json() == {"deleted": 1}
    got = api.post(
        "/v1/records/identity/get",
        "duty-1",
        {"subject": person.id_number, "purpose": "identity_check"},
    )
    assert got.status_code == 200 and got.json() == {"records": []}


def test_id_numbers_never_travel_in_urls(api: Api) -> None:
    """No route takes a subject in its path or query: URLs reach access logs."""
    document = api.app.openapi()
    names = set()
    for path, operations in document["paths"].items():
        names |= {part.strip("{}") for part in path.split("/") if part.startswith("{")}
        for operation in operations.values():
            names |= {p["name"] for p in operation.get("parameters", [])}
    assert names  # the check below looks at something
    assert not {n for n in names if "subject" in n or "id_number" in n or "person" in n}
