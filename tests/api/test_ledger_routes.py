"""The ledger over HTTP: public checkpoints, consistency proofs and cosignatures that verify
with the published keys; entries with inclusion proofs only for their accessor or oversight."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from custodes.config import StoreSettings
from custodes.ledger import CheckpointLog, merkle, open_note
from custodes.ledger.note import Checkpoint
from custodes.ledger.witness import Witness, publish_cosignature
from custodes.vault import Vault
from tests.api.conftest import PEOPLE, Api, build_api, store_settings_for
from tests.helpers import START

WITNESS = "witness.example/w1"


def b64(text: str) -> bytes:
    return base64.b64decode(text)


def _cosign(vault: Vault) -> None:
    """Sign a checkpoint, have a witness cosign and publish it, and configure its key."""
    settings = vault.settings
    log = CheckpointLog.open(settings)
    signed = log.sign(vault.ledger, START)
    witness = Witness.create(settings.home / "witness", WITNESS)
    witness.trust(log.vkey)
    cosigned = witness.cosign(signed.note, vault.ledger, signed.signed_at)
    publish_cosignature(settings.ledger_dir, witness.name, cosigned)
    toml = settings.home / "custodes.toml"
    text = toml.read_text(encoding="utf-8")
    toml.write_text(
        text.replace("[ledger]\n", f"[ledger]\nwitnesses = [{json.dumps(witness.vkey)}]\n", 1)
    )


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def witnessed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Api]:
    """An app whose ledger has a checkpoint cosigned by a configured witness."""
    home = tmp_path_factory.mktemp("ledger") / "home"
    store = store_settings_for(str(request.param), home, request)
    yield from build_api(home, store, prepare=_cosign)


def test_no_checkpoint_yet_is_404(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = StoreSettings(backend="sqlite", path=home / "data" / "custodes.db")
    for fresh in build_api(home, store, people=()):
        response = fresh.get("/v1/ledger/checkpoint", None)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


def test_checkpoint_is_public_and_verifies(witnessed: Api) -> None:
    response = witnessed.get("/v1/ledger/checkpoint", None)
    assert response.status_code == 200, response.text
    checkpoint = response.json()
    text, signers = open_note(checkpoint["note"], {checkpoint["origin"]: checkpoint["vkey"]})
    assert signers == [checkpoint["origin"]]
    parsed = Checkpoint.parse(text)
    assert parsed.size == checkpoint["size"] == len(PEOPLE)
    assert parsed.root == b64(checkpoint["root"]) == witnessed.vault.ledger.root(parsed.size)


def test_cosignatures_are_public_and_verify(witnessed: Api) -> None:
    response = witnessed.get("/v1/ledger/cosignatures", None)
    assert response.status_code == 200
    body = response.json()
    (vkey,) = body["witnesses"]
    (published,) = body["cosignatures"]
    assert published["witness"] == WITNESS
    _, signers = open_note(published["note"], {WITNESS: vkey})
    assert signers == [WITNESS]
    # The log's own signature is on the same note, under the log's key.
    origin = witnessed.vault.settings.ledger_origin
    assert open_note(published["note"], {origin: body["log_vkey"]})[1] == [origin]


def test_consistency_proof_is_public_and_verifies(witnessed: Api) -> None:
    ledger = witnessed.vault.ledger
    new = ledger.size()
    for old in (1, 7, new):
        response = witnessed.get("/v1/ledger/consistency", None, old=old, new=new)
        assert response.status_code == 200, response.text
        proof = [b64(h) for h in response.json()["proof"]]
        merkle.verify_consistency(old, new, ledger.root(old), ledger.root(new), proof)


@pytest.mark.parametrize(("old", "new"), [(5, 3), (1, 10**9), (0, 3)])
def test_impossible_consistency_is_422(witnessed: Api, old: int, new: int) -> None:
    response = witnessed.get("/v1/ledger/consistency", None, old=old, new=new)
    assert response.status_code == 422


def _read(api: Api, accessor: str, index: int) -> int:
    """Make ``accessor`` read person ``index``; return the ledger seq of the read."""
    body = {"subject": PEOPLE[index].id_number, "purpose": "identity_check"}
    assert api.post("/v1/records/identity/get", accessor, body).status_code == 200
    return api.vault.ledger.size() - 1


def test_own_entry_with_an_inclusion_proof(witnessed: Api) -> None:
    seq = _read(witnessed, "duty-1", 0)
    response = witnessed.get(f"/v1/ledger/entries/{seq}", "duty-1")
    assert response.status_code == 200, response.text
    body = response.json()
    entry = b64(body["entry"])
    assert json.loads(entry)["seq"] == seq
    assert body["event"]["accessor"] == "duty-1" and body["event"]["action"] == "get"
    assert b64(body["leaf_hash"]) == merkle.leaf_hash(entry)
    # The entry was past the last checkpoint: one covering it was signed for the answer.
    checkpoint = body["checkpoint"]
    assert checkpoint["size"] == body["size"] > seq
    text, _ = open_note(checkpoint["note"], {checkpoint["origin"]: checkpoint["vkey"]})
    root = Checkpoint.parse(text).root
    merkle.verify_inclusion(entry, seq, body["size"], [b64(h) for h in body["proof"]], root)


def test_inclusion_in_a_named_tree_size(witnessed: Api) -> None:
    seq = _read(witnessed, "duty-1", 1)
    size = witnessed.vault.ledger.size()
    response = witnessed.get(f"/v1/ledger/entries/{seq}", "duty-1", size=size)
    assert response.status_code == 200
    body = response.json()
    assert body["size"] == size and body["checkpoint"] is None
    proof = [b64(h) for h in body["proof"]]
    merkle.verify_inclusion(b64(body["entry"]), seq, size, proof, witnessed.vault.ledger.root(size))
    too_small = witnessed.get(f"/v1/ledger/entries/{seq}", "duty-1", size=seq)
    assert too_small.status_code == 422
    too_big = witnessed.get(f"/v1/ledger/entries/{seq}", "duty-1", size=size + 100)
    assert too_big.status_code == 422


def test_another_accessors_entry_is_refused(witnessed: Api) -> None:
    seq = _read(witnessed, "duty-1", 2)
    response = witnessed.get(f"/v1/ledger/entries/{seq}", "sup-1")
    assert response.status_code == 403
    assert response.json()["error"]["missing"] == ["entry.accessor"]
    assert witnessed.get(f"/v1/ledger/entries/{seq}", "aud-1").status_code == 200
    assert witnessed.get(f"/v1/ledger/entries/{seq}", None).status_code == 401


def test_entry_beyond_the_log_is_404(witnessed: Api) -> None:
    size = witnessed.vault.ledger.size()
    assert witnessed.get(f"/v1/ledger/entries/{size}", "aud-1").status_code == 404
    assert witnessed.get("/v1/ledger/entries/-1", "aud-1").status_code == 422
