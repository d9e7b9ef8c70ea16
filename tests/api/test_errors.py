"""One JSON error shape for every error, whoever raised it (pinned here).

``{"error": {"code": ..., "message": ...}}``, plus ``missing`` (a list) exactly when the code is
``access_denied`` and ``detail`` (a list of ``{loc, msg}``) exactly for request validation.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from starlette.testclient import TestClient

from custodes.config import StoreSettings
from tests.api.conftest import PEOPLE, Api, build_api

PERSON = PEOPLE[0]


def error_of(response: httpx2.Response, status: int, code: str) -> dict[str, Any]:
    """Assert the one error shape with this status and code; return the inner object."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["error"]
    error = body["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    allowed = {"code", "message"}
    if code == "access_denied":
        allowed.add("missing")
        assert isinstance(error["missing"], list)
    if "detail" in error:
        allowed.add("detail")
        assert all(set(item) == {"loc", "msg"} for item in error["detail"])
    assert set(error) == allowed
    return dict(error)


def test_no_credentials_is_401_with_a_bearer_challenge(sqlite_api: Api) -> None:
    response = sqlite_api.post("/v1/records/identity/get", None, {"subject": "x", "purpose": "y"})
    error_of(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"] == "Bearer"


def test_policy_refusal_is_403_naming_what_was_missing(sqlite_api: Api) -> None:
    body = {"subject": PERSON.id_number, "purpose": "registration"}
    error = error_of(
        sqlite_api.post("/v1/records/identity/get", "duty-1", body), 403, "access_denied"
    )
    assert error["message"].startswith("access denied: ")
    assert error["missing"] == ["grant"]


def test_wrong_role_for_a_route_is_403_in_the_same_shape(sqlite_api: Api) -> None:
    error = error_of(sqlite_api.get("/metrics", "duty-1"), 403, "access_denied")
    assert error["missing"] == ["oversight_role"]


def test_unknown_collection_is_404(sqlite_api: Api) -> None:
    body = {"subject": PERSON.id_number, "purpose": "identity_check"}
    error_of(sqlite_api.post("/v1/records/nothing_here/get", "duty-1", body), 404, "not_found")


def test_unknown_path_is_404(sqlite_api: Api) -> None:
    error_of(sqlite_api.get("/v1/nothing", "duty-1"), 404, "not_found")


def test_wrong_method_is_405(sqlite_api: Api) -> None:
    response = sqlite_api.client.delete("/v1/health")
    error_of(response, 405, "method_not_allowed")
    assert "GET" in response.headers["allow"]


def test_request_validation_is_422_with_detail(sqlite_api: Api) -> None:
    body = {"subject": PERSON.id_number}
    error = error_of(
        sqlite_api.post("/v1/records/identity/get", "duty-1", body), 422, "invalid_request"
    )
    assert error["message"] == "purpose: Field required"
    assert error["detail"] == [{"loc": ["body", "purpose"], "msg": "Field required"}]


def test_malformed_json_is_422(sqlite_api: Api) -> None:
    response = sqlite_api.client.post(
        "/v1/records/identity/get",
        content=b'{"subject": ',
        headers={**sqlite_api.headers("duty-1"), "Content-Type": "application/json"},
    )
    error_of(response, 422, "invalid_request")


def test_invalid_input_found_by_the_vault_is_422_without_detail(sqlite_api: Api) -> None:
    body = {"subject": "110101199003071234", "purpose": "identity_check"}  # bad checksum
    error = error_of(
        sqlite_api.post("/v1/records/identity/get", "duty-1", body), 422, "invalid_request"
    )
    assert "detail" not in error


@pytest.fixture
def exploding(tmp_path: Path) -> Iterator[TestClient]:
    home = tmp_path / "home"
    store = StoreSettings(backend="sqlite", path=home / "data" / "custodes.db")
    for built in build_api(home, store, people=()):

        def boom() -> None:
            raise RuntimeError("secret internals")

        built.app.add_api_route("/v1/boom", boom)
        with TestClient(built.app, raise_server_exceptions=False) as client:
            yield client


def test_an_unexpected_error_is_500_without_internals(exploding: TestClient) -> None:
    response = exploding.get("/v1/boom")
    error = error_of(response, 500, "internal_error")
    assert "secret" not in response.text
    assert error["message"] == "internal error (logged on the server)"
