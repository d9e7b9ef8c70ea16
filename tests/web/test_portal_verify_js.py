"""``static/verify.js`` in Chromium: it accepts the server's real bundles and rejects forged ones.

Each adversarial bundle changes one thing an attacker controlling the server or the database
could change: the log's signature, the log key itself, a witness cosignature, which proof goes
with which entry, the entry bytes, whose entry it is. The Merkle walk is also checked against
the Python ledger code for every leaf of every tree up to 40 leaves.
"""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest

from custodes.errors import VerificationError
from custodes.ledger import NoteSigner, WitnessSigner, merkle
from custodes.web import check_bundle, key_fingerprint, proof_bundle
from tests.web.conftest import Demo, LiveServer

pytestmark = pytest.mark.browser

VERIFY = """async ([bundle]) => {
  const m = await import('/static/verify.js');
  const out = await m.verifyBundle(bundle);
  return out.entries.map(e => [e.index, e.state, e.why]);
}"""


@pytest.fixture(scope="module")
def bundle(live_server: LiveServer, demo: Demo) -> dict[str, Any]:
    """The server's bundle for the seller's victim: the seller's reads and two newer entries."""
    service = live_server.app.state.service
    victim = demo.victim("seller")
    pseudonym = service.vault.pseudonym(victim.subject)
    return proof_bundle(
        store=service.vault.store,
        ledger=service.vault.ledger,
        checkpoints=service.checkpoints,
        witnesses=service.settings.witnesses,
        ledger_dir=service.settings.ledger_dir,
        subject=pseudonym,
        seqs=list(victim.events),
    )


@pytest.fixture
def js(page: Any, live_server: LiveServer) -> Any:
    """A page of the served origin (a secure context: Web Crypto has Ed25519 there)."""
    page.goto(f"{live_server.url}/portal/login")
    return page


def verify(page: Any, bundle: dict[str, Any]) -> dict[int, tuple[str, str]]:
    return {index: (state, why) for index, state, why in page.evaluate(VERIFY, [bundle])}


def flip(b64: str, at: int) -> str:
    raw = bytearray(base64.b64decode(b64))
    raw[at] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def resign_line(note: str, name: str, change: Any) -> str:
    """Apply ``change`` to the base64 payload of ``name``'s signature line."""
    lines = note.split("\n")
    for i, line in enumerate(lines):
        if line.startswith(f"— {name} "):
            prefix, payload = line.rsplit(" ", 1)
            lines[i] = f"{prefix} {change(payload)}"
    return "\n".join(lines)


def all_failed(states: dict[int, tuple[str, str]], why: str) -> None:
    assert states and all(s == "failed" for s, _ in states.values()), states
    assert all(why in w for _, w in states.values()), states


def test_the_real_bundle_verifies(js: Any, bundle: dict[str, Any]) -> None:
    states = verify(js, bundle)
    assert {s for s, _ in states.values()} == {"verified"}
    assert check_bundle(bundle) == dict.fromkeys(states, "verified")  # the Python twin agrees


def test_a_bad_log_signature_fails(js: Any, bundle: dict[str, Any]) -> None:
    forged = copy.deepcopy(bundle)
    origin = forged["log"]["origin"]
    note = forged["checkpoint"]["note"]
    forged["checkpoint"]["note"] = resign_line(note, origin, lambda p: flip(p, 10))
    all_failed(verify(js, forged), "the log's signature on the checkpoint does not verify")


def test_another_log_key_fails(js: Any, bundle: dict[str, Any]) -> None:
    forged = copy.deepcopy(bundle)
    forged["log"]["vkey"] = NoteSigner.generate(forged["log"]["origin"]).vkey
    all_failed(verify(js, forged), "not signed by the log's key")


def test_a_checkpoint_signed_by_an_impostor_log_fails(js: Any, bundle: dict[str, Any]) -> None:
    """A server that re-signs a rewritten checkpoint with a new key must also hand out that key;
    the checkpoint then lacks the witness's cosignature (and the fingerprint changes)."""
    forged = copy.deepcopy(bundle)
    impostor = NoteSigner.generate(forged["log"]["origin"])
    body = forged["checkpoint"]["note"].split("\n\n")[0] + "\n"
    forged["checkpoint"]["note"] = impostor.sign(body)
    forged["log"]["vkey"] = impostor.vkey
    all_failed(verify(js, forged), "no witness cosigned the checkpoint")


def test_a_bad_cosignature_fails(js: Any, bundle: dict[str, Any]) -> None:
    forged = copy.deepcopy(bundle)
    note = forged["checkpoint"]["note"]
    forged["checkpoint"]["note"] = resign_line(
        note, "witness.custodes.local/demo", lambda p: flip(p, 20)
    )
    all_failed(verify(js, forged), "cosignature of witness witness.custodes.local/demo")


def test_a_missing_or_foreign_cosignature_fails(js: Any, bundle: dict[str, Any]) -> None:
    dropped = copy.deepcopy(bundle)
    note = dropped["checkpoint"]["note"]
    dropped["checkpoint"]["note"] = "\n".join(
        line for line in note.split("\n") if not line.startswith("— witness.")
    )
    all_failed(verify(js, dropped), "no witness cosigned the checkpoint")
    other = copy.deepcopy(bundle)
    other["witnesses"] = [WitnessSigner.generate("witness.custodes.local/demo").vkey]
    all_failed(verify(js, other), "no witness cosigned the checkpoint")


def test_a_proof_for_another_entry_fails(js: Any, bundle: dict[str, Any]) -> None:
    forged = copy.deepcopy(bundle)
    first, second = forged["entries"][0], forged["entries"][-1]
    first["proof"], second["proof"] = second["proof"], first["proof"]
    states = verify(js, forged)
    assert states[first["index"]][0] == states[second["index"]][0] == "failed"
    moved = copy.deepcopy(bundle)  # an entry's bytes with another entry's position and proof
    moved["entries"][0]["entry"] = moved["entries"][-1]["entry"]
    assert verify(js, moved)[moved["entries"][0]["index"]][0] == "failed"


def test_modified_entry_bytes_fail(js: Any, bundle: dict[str, Any]) -> None:
    forged = copy.deepcopy(bundle)
    item = forged["entries"][0]
    entry = base64.b64decode(item["entry"]).replace(b'"decision":"allow"', b'"decision":"deny"')
    entry = entry.replace(b'"purpose":"', b'"purpose":"x', 1)
    item["entry"] = base64.b64encode(entry).decode()
    states = verify(js, forged)
    assert states[item["index"]] == ("failed", "altered: its hash does not lead to the signed root")
    assert all(s == "verified" for i, (s, _) in states.items() if i != item["index"])


def test_someone_elses_entry_fails(js: Any, bundle: dict[str, Any]) -> None:
    forged = copy.deepcopy(bundle)
    forged["subject"] = "0" * 32  # the server claims these are another person's entries
    all_failed(verify(js, forged), "about someone else")


def test_entries_past_the_checkpoint_are_pending(js: Any, bundle: dict[str, Any]) -> None:
    later = copy.deepcopy(bundle)
    for item in later["entries"]:
        item.pop("proof")
        item["pending"] = True
    later["checkpoint"] = None
    assert {s for s, _ in verify(js, later).values()} == {"pending"}
    # A server cannot make a failing entry "pending" by leaving its proof out.
    lazy = copy.deepcopy(bundle)
    lazy["entries"][0].pop("proof")
    assert verify(js, lazy)[lazy["entries"][0]["index"]][0] == "failed"


def test_the_fingerprint_matches_the_servers(js: Any, bundle: dict[str, Any]) -> None:
    vkey = bundle["log"]["vkey"]
    shown = js.evaluate("async (v) => (await import('/static/verify.js')).fingerprint(v)", vkey)
    assert shown == key_fingerprint(vkey)


def test_the_merkle_walk_matches_the_ledger_code(js: Any) -> None:
    cases = []
    for size in range(1, 41):
        leaves = [f"entry {i} of {size}".encode() for i in range(size)]
        root = base64.b64encode(merkle.root(leaves)).decode()
        for index in range(size):
            proof = [base64.b64encode(p).decode() for p in merkle.inclusion_proof(leaves, index)]
            cases.append([base64.b64encode(leaves[index]).decode(), index, size, proof, root])
    results = js.evaluate(
        """async (cases) => {
          const m = await import('/static/verify.js');
          const out = [];
          for (const [entry, index, size, proof, root] of cases) {
            const e = m.b64decode(entry, 'e'), r = m.b64decode(root, 'r');
            const p = proof.map(x => m.b64decode(x, 'p'));
            const ok = async (i, s, pr) => {
              try { await m.verifyInclusion(e, i, s, pr, r); return true; }
              catch (err) { if (err instanceof m.VerifyError) return false; throw err; }
            };
            out.push([await ok(index, size, p), await ok(index + 1, size, p),
                      await ok(index, size + 1, p), await ok(index, size, p.slice(0, -1))]);
          }
          return out;
        }""",
        cases,
    )
    assert len(results) == len(cases)
    for (entry, index, size, proof, root), verdicts in zip(cases, results, strict=True):
        leaf, top = base64.b64decode(entry), base64.b64decode(root)
        hashes = [base64.b64decode(p) for p in proof]
        variants = [(index, size, hashes), (index + 1, size, hashes), (index, size + 1, hashes)]
        variants.append((index, size, hashes[:-1]))
        assert verdicts[0], (index, size)
        assert verdicts == [python_accepts(leaf, *v, top) for v in variants], (index, size)


def python_accepts(leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes) -> bool:
    try:
        merkle.verify_inclusion(leaf, index, size, proof, root)
    except VerificationError:
        return False
    return True
