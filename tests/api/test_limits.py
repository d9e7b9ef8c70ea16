"""Request limits: oversized bodies get 413 and change nothing; each credential has its own
rate limit (429 with Retry-After); the metrics are for oversight only and count what happened."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from custodes.api._limits import RateLimiter
from tests.api.conftest import PEOPLE, Api, build_api, identity, store_settings_for
from tests.api.test_tokens import FakeTime

MAX_BODY = 2048
LIMITED_TOML = f"[api]\nmax_body_bytes = {MAX_BODY}\nrate_per_second = 1\nrate_burst = 3\n"


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def limited(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Api]:
    home = tmp_path_factory.mktemp("limits") / "home"
    store = store_settings_for(str(request.param), home, request)
    yield from build_api(home, store, api_toml=LIMITED_TOML)


def _oversized_put() -> dict[str, object]:
    person = PEOPLE[30]
    values = {**identity(person), "address": "x" * (MAX_BODY + 100)}
    return {"subject": person.id_number, "values": values, "purpose": "registration"}


def test_an_oversized_body_is_413_and_writes_nothing(limited: Api) -> None:
    before = limited.vault.ledger.size()
    response = limited.post("/v1/records/identity", "reg-1", _oversized_put())
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
    assert limited.vault.ledger.size() == before


def test_an_oversized_body_without_a_length_is_cut_off(limited: Api) -> None:
    """A chunked body declares no length: it is counted as it arrives and refused at the cap."""
    data = json.dumps(_oversized_put()).encode()
    before = limited.vault.ledger.size()

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(data), 512):
            yield data[start : start + 512]

    response = limited.client.post(
        "/v1/records/identity",
        content=chunks(),
        headers={**limited.headers("clerk-1"), "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
    assert limited.vault.ledger.size() == before


def test_a_body_under_the_limit_passes(limited: Api) -> None:
    person = PEOPLE[31]
    body = {"subject": person.id_number, "values": identity(person), "purpose": "registration"}
    assert len(json.dumps(body)) < MAX_BODY
    assert limited.post("/v1/records/identity", "reg-1", body).status_code == 201


def test_each_token_has_its_own_rate_limit(limited: Api) -> None:
    body = {"subject": PEOPLE[0].id_number, "purpose": "identity_check"}
    statuses = [limited.post("/v1/records/identity/get", "duty-1", body) for _ in range(6)]
    assert [r.status_code for r in statuses[:3]] == [200, 200, 200]  # the burst
    refused = [r for r in statuses if r.status_code == 429]
    assert refused, [r.status_code for r in statuses]
    assert refused[0].json()["error"]["code"] == "rate_limited"
    assert int(refused[0].headers["retry-after"]) >= 1
    # Another credential is not slowed down by this one.
    other = {"subject": PEOPLE[1].id_number, "purpose": "identity_check"}
    assert limited.post("/v1/records/identity/get", "sup-1", other).status_code == 200


def test_a_token_bucket_refills_at_the_rate() -> None:
    tick = FakeTime()
    limiter = RateLimiter(rate=2, burst=4, monotonic=tick)
    assert [limiter.retry_after("a") for _ in range(5)] == [0, 0, 0, 0, 1]
    assert limiter.retry_after("b") == 0
    tick.now += 0.5  # one request's worth at 2/s
    assert limiter.retry_after("a") == 0
    assert limiter.retry_after("a") == 1
    tick.now += 60
    assert [limiter.retry_after("a") for _ in range(5)] == [0, 0, 0, 0, 1]  # capped at burst


def test_metrics_are_for_oversight_only(sqlite_api: Api) -> None:
    assert sqlite_api.get("/metrics", None).status_code == 401
    assert sqlite_api.get("/metrics", "clerk-1").status_code == 403
    response = sqlite_api.get("/metrics", "aud-1")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")


def test_metrics_count_requests_by_route_and_decisions(sqlite_api: Api) -> None:
    person = PEOPLE[10]
    for purpose in ("identity_check", "registration"):
        body = {"subject": person.id_number, "purpose": purpose}
        sqlite_api.post("/v1/records/identity/get", "duty-1", body)
    text = sqlite_api.get("/metrics", "aud-1").text
    route = 'route="/v1/records/{collection}/get"'
    assert f'custodes_http_requests_total{{method="POST",{route},status="200"}}' in text
    assert f'custodes_http_requests_total{{method="POST",{route},status="403"}}' in text
    assert 'custodes_decisions_total{action="get",decision="allow"}' in text
    assert 'custodes_decisions_total{action="get",decision="deny"}' in text
    assert "custodes_http_request_duration_seconds_bucket{le=" in text
    assert person.id_number not in text and "identity_check" not in text


def test_metrics_count_every_request_of_a_label_set(sqlite_api: Api) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    wanted = {
        "custodes_http_requests_total",
        "custodes_http_request_duration_seconds_count",
        "custodes_decisions_total",
    }

    def counts() -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        text = sqlite_api.get("/metrics", "aud-1").text
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name in wanted
        }

    route = ("route", "/v1/records/{collection}/get")
    keys = [
        ("custodes_http_requests_total", frozenset({("method", "POST"), route, ("status", "200")})),
        ("custodes_http_request_duration_seconds_count", frozenset({("method", "POST"), route})),
        ("custodes_decisions_total", frozenset({("action", "get"), ("decision", "allow")})),
    ]
    before = counts()
    body = {"subject": PEOPLE[11].id_number, "purpose": "identity_check"}
    for _ in range(3):
        assert sqlite_api.post("/v1/records/identity/get", "duty-1", body).status_code == 200
    after = counts()
    for key in keys:
        assert after[key] - before.get(key, 0.0) == 3, key
