"""Signed notes, vkeys, checkpoints and witness cosignatures: round trips and attacks."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from custodes.errors import InputError, SignatureError
from custodes.ledger.note import (
    Checkpoint,
    NoteSigner,
    WitnessSigner,
    decode_vkey,
    encode_vkey,
    key_id,
    open_note,
    verify_cosignature,
)

LOG = "log.example/custodes"
WITNESS = "witness.example/w1"
SEED = bytes(range(32))
ROOT = hashlib.sha256(b"root").digest()


@pytest.fixture(scope="module")
def signer() -> NoteSigner:
    return NoteSigner.from_private_bytes(LOG, SEED)


@pytest.fixture(scope="module")
def witness() -> WitnessSigner:
    return WitnessSigner.from_private_bytes(WITNESS, bytes(reversed(SEED)))


def _sig_bytes(note: str) -> bytes:
    return base64.b64decode(note.rstrip("\n").rsplit(" ", 1)[1])


# --- vkeys and key IDs ------------------------------------------------------------------------


def test_vkey_round_trip_and_key_id(signer: NoteSigner) -> None:
    name, public = decode_vkey(signer.vkey)
    assert name == LOG
    assert encode_vkey(name, public) == signer.vkey
    expected = hashlib.sha256(LOG.encode() + b"\n\x01" + public).digest()[:4]
    assert key_id(name, public) == expected == signer.key_id
    assert signer.vkey.split("+", 2)[1] == expected.hex()


def test_witness_key_id_uses_type_0x04(witness: WitnessSigner) -> None:
    name, public = decode_vkey(witness.vkey)
    assert witness.key_id == hashlib.sha256(name.encode() + b"\n\x04" + public).digest()[:4]
    assert witness.key_id != key_id(name, public)


@pytest.mark.parametrize(
    "vkey",
    [
        "",
        "name-only",
        "a+b+c",
        "bad name+00000000+AQ==",
        "x+0000000+" + base64.b64encode(b"\x01" + bytes(32)).decode(),
        "x+00000000+" + base64.b64encode(b"\x01" + bytes(32)).decode(),  # key ID mismatch
        "x+00000000+" + base64.b64encode(b"\x02" + bytes(32)).decode(),  # unknown type
        "x+00000000+" + base64.b64encode(b"\x01" + bytes(31)).decode(),  # short key
        "x+00000000+!!!!",
    ],
)
def test_malformed_vkeys_are_rejected(vkey: str) -> None:
    with pytest.raises(SignatureError):
        decode_vkey(vkey)


def test_vkey_with_wrong_key_id_is_rejected(signer: NoteSigner) -> None:
    name, kid, b64 = signer.vkey.split("+", 2)
    wrong = f"{int(kid, 16) ^ 1:08x}"
    with pytest.raises(SignatureError, match="key ID that does not match"):
        decode_vkey(f"{name}+{wrong}+{b64}")


@pytest.mark.parametrize("name", ["", "has space", "has+plus", "tab\tname", "nbsp\u00a0name"])
def test_invalid_key_names_are_refused(name: str) -> None:
    with pytest.raises(InputError):
        NoteSigner.generate(name)


def test_private_key_must_be_32_bytes() -> None:
    with pytest.raises(InputError, match="32-byte"):
        NoteSigner.from_private_bytes(LOG, bytes(31))


# --- notes ------------------------------------------------------------------------------------


note_texts = st.lists(
    st.text(st.characters(min_codepoint=0x20, codec="utf-8"), max_size=30),
    min_size=1,
    max_size=5,
).map(lambda lines: "".join(line + "\n" for line in lines))


@settings(max_examples=40, deadline=None)
@given(note_texts)
def test_note_round_trip(text: str) -> None:
    signer = NoteSigner.from_private_bytes(LOG, SEED)
    if any(line.startswith("— ") for line in text.split("\n")):
        with pytest.raises(InputError):
            signer.sign(text)
        return
    assert open_note(signer.sign(text), {LOG: signer.vkey}) == (text, [LOG])


def test_tampered_text_is_rejected(signer: NoteSigner) -> None:
    note = signer.sign("size 10\n")
    with pytest.raises(SignatureError, match="does not verify"):
        open_note(note.replace("size 10", "size 11"), {LOG: signer.vkey})


def test_every_signature_bit_flip_is_rejected(signer: NoteSigner) -> None:
    text = "hello\n"
    raw = _sig_bytes(signer.sign(text))
    for i in range(len(raw) * 8):
        bad = bytearray(raw)
        bad[i // 8] ^= 1 << (i % 8)
        note = f"{text}\n— {LOG} {base64.b64encode(bytes(bad)).decode()}\n"
        # A flipped key ID makes the line "unknown" (ignored), so the note has no known signer.
        with pytest.raises(SignatureError):
            open_note(note, {LOG: signer.vkey})


def test_unknown_key_is_rejected(signer: NoteSigner) -> None:
    other = NoteSigner.generate("other.example/log")
    with pytest.raises(SignatureError, match="not signed by any known key"):
        open_note(signer.sign("x\n"), {other.name: other.vkey})


def test_same_name_different_key_is_not_trusted(signer: NoteSigner) -> None:
    impostor = NoteSigner.generate(LOG)
    with pytest.raises(SignatureError, match="not signed by any known key"):
        open_note(impostor.sign("x\n"), {LOG: signer.vkey})


def test_forged_line_with_known_key_id_rejects_the_note(signer: NoteSigner) -> None:
    impostor = NoteSigner.generate("attacker.example")
    forged = _sig_bytes(impostor.sign("x\n"))[4:]
    note = signer.sign("x\n") + f"— {LOG} {base64.b64encode(signer.key_id + forged).decode()}\n"
    with pytest.raises(SignatureError, match="does not verify"):
        open_note(note, {LOG: signer.vkey})


def test_unknown_signers_are_ignored_and_known_ones_listed(signer: NoteSigner) -> None:
    other = NoteSigner.generate("other.example/log")
    text = "two signers\n"
    note = signer.sign(text) + other.sign(text).split("\n\n", 1)[1]
    assert open_note(note, {LOG: signer.vkey}) == (text, [LOG])
    assert open_note(note, {LOG: signer.vkey, other.name: other.vkey})[1] == [LOG, other.name]


def test_text_may_contain_blank_lines(signer: NoteSigner) -> None:
    text = "a\n\nb\n\n"
    assert open_note(signer.sign(text), {LOG: signer.vkey}) == (text, [LOG])


@pytest.mark.parametrize(
    "text", ["no newline", "ctrl\x00char\n", "cr\r\n", "x\n— fake sig\n", "bad \ud800 utf8\n"]
)
def test_sign_refuses_bad_text(signer: NoteSigner, text: str) -> None:
    with pytest.raises(InputError):
        signer.sign(text)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda n: n.rstrip("\n"),  # no final newline
        lambda n: n.replace("\n\n", "\n"),  # no blank line
        lambda n: n.split("\n\n")[0] + "\n\n",  # no signature lines
        lambda n: n.replace("— ", "- "),  # not an em dash
        lambda n: n.replace("— ", "—  "),  # empty name
        lambda n: n[:-3] + "!\n",  # bad base64
        lambda n: n.replace("\n\n", "\n\x07\n"),  # control character
    ],
)
def test_malformed_notes_are_rejected(signer: NoteSigner, mangle: Callable[[str], str]) -> None:
    with pytest.raises(SignatureError, match=r"malformed|base64|not signed|control"):
        open_note(mangle(signer.sign("x\n")), {LOG: signer.vkey})


def test_unicode_line_separators_do_not_split_signature_lines(signer: NoteSigner) -> None:
    note = signer.sign("x\n")
    with pytest.raises(SignatureError):
        open_note(note[:-1] + "\u2028— other.example AAAAAAA=\n", {LOG: signer.vkey})


def test_too_many_signatures_are_refused(signer: NoteSigner) -> None:
    note = signer.sign("x\n") + "— junk.example AAAAAAA=\n" * 100
    with pytest.raises(SignatureError, match="more than 100"):
        open_note(note, {LOG: signer.vkey})


def test_verifier_name_must_match_its_vkey(signer: NoteSigner) -> None:
    with pytest.raises(SignatureError, match="vkey named"):
        open_note(signer.sign("x\n"), {"someone.else": signer.vkey})


# --- checkpoints ------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**64 - 1), st.binary(min_size=32, max_size=32))
def test_checkpoint_round_trip(size: int, root: bytes) -> None:
    checkpoint = Checkpoint(origin=LOG, size=size, root=root)
    assert Checkpoint.parse(checkpoint.body()) == checkpoint


def test_checkpoint_body_format() -> None:
    body = Checkpoint(origin=LOG, size=7, root=ROOT).body()
    assert body == f"{LOG}\n7\n{base64.b64encode(ROOT).decode()}\n"


@pytest.mark.parametrize(
    "body",
    [
        "",
        f"{LOG}\n7\n",
        f"{LOG}\n07\n{base64.b64encode(ROOT).decode()}\n",
        f"{LOG}\n+7\n{base64.b64encode(ROOT).decode()}\n",
        f"{LOG}\n 7\n{base64.b64encode(ROOT).decode()}\n",
        f"{LOG}\n-1\n{base64.b64encode(ROOT).decode()}\n",
        f"{LOG}\n\u0667\n{base64.b64encode(ROOT).decode()}\n",  # Arabic-Indic digit seven
        f"{LOG}\n{2**64}\n{base64.b64encode(ROOT).decode()}\n",
        f"{LOG}\n{'9' * 5000}\n{base64.b64encode(ROOT).decode()}\n",
        f"{LOG}\n7\n{base64.b64encode(ROOT[:31]).decode()}\n",
        f"{LOG}\n7\n{base64.b64encode(ROOT).decode()}",
        f"{LOG}\n7\n{base64.b64encode(ROOT).decode()}\nextension\n",
        f"\n7\n{base64.b64encode(ROOT).decode()}\n",
    ],
)
def test_malformed_checkpoints_are_rejected(body: str) -> None:
    with pytest.raises(SignatureError):
        Checkpoint.parse(body)


def test_checkpoint_constructor_validates() -> None:
    with pytest.raises(InputError, match="32"):
        Checkpoint(origin=LOG, size=1, root=b"short")
    with pytest.raises(InputError, match="size"):
        Checkpoint(origin=LOG, size=-1, root=ROOT)
    with pytest.raises(InputError, match="origin"):
        Checkpoint(origin="", size=1, root=ROOT)


# --- cosignatures -----------------------------------------------------------------------------


def test_cosignature_round_trip(witness: WitnessSigner) -> None:
    body = Checkpoint(origin=LOG, size=42, root=ROOT).body()
    line = witness.cosign(body, 1_700_000_000)
    assert line.startswith(f"— {WITNESS} ") and line.endswith("\n")
    assert verify_cosignature(line, body, witness.vkey) == 1_700_000_000
    raw = _sig_bytes(line)
    assert len(raw) == 4 + 8 + 64
    assert raw[:4] == witness.key_id
    assert int.from_bytes(raw[4:12], "big") == 1_700_000_000


def test_cosignature_signs_the_spec_message(witness: WitnessSigner) -> None:
    body = Checkpoint(origin=LOG, size=42, root=ROOT).body()
    raw = _sig_bytes(witness.cosign(body, 123))
    _, public = decode_vkey(witness.vkey)
    message = f"cosignature/v1\ntime 123\n{body}".encode()
    Ed25519PublicKey.from_public_bytes(public).verify(raw[12:], message)


def test_cosigned_checkpoint_opens_with_both_keys(
    signer: NoteSigner, witness: WitnessSigner
) -> None:
    body = Checkpoint(origin=LOG, size=3, root=ROOT).body()
    note = signer.sign(body) + witness.cosign(body, 5)
    verifiers = {LOG: signer.vkey, WITNESS: witness.vkey}
    assert open_note(note, verifiers) == (body, [LOG, WITNESS])


def test_cosignature_rejects_tampering(witness: WitnessSigner) -> None:
    body = Checkpoint(origin=LOG, size=42, root=ROOT).body()
    line = witness.cosign(body, 1000)
    raw = _sig_bytes(line)
    other_body = Checkpoint(origin=LOG, size=43, root=ROOT).body()
    with pytest.raises(SignatureError, match="does not verify"):
        verify_cosignature(line, other_body, witness.vkey)
    later = raw[:4] + (1001).to_bytes(8, "big") + raw[12:]
    with pytest.raises(SignatureError, match="does not verify"):
        verify_cosignature(f"— {WITNESS} {base64.b64encode(later).decode()}\n", body, witness.vkey)
    with pytest.raises(SignatureError, match="wrong length"):
        verify_cosignature(f"— {WITNESS} {base64.b64encode(raw[:-1]).decode()}", body, witness.vkey)
    stranger = WitnessSigner.generate(WITNESS)
    with pytest.raises(SignatureError, match="not from witness"):
        verify_cosignature(line, body, stranger.vkey)


def test_cosignature_needs_a_witness_vkey(signer: NoteSigner, witness: WitnessSigner) -> None:
    body = Checkpoint(origin=LOG, size=1, root=ROOT).body()
    with pytest.raises(SignatureError, match="not a cosignature"):
        verify_cosignature(witness.cosign(body, 1), body, signer.vkey)


def test_cosign_refuses_bad_input(witness: WitnessSigner) -> None:
    body = Checkpoint(origin=LOG, size=1, root=ROOT).body()
    with pytest.raises(InputError, match="timestamp"):
        witness.cosign(body, -1)
    with pytest.raises(InputError, match="timestamp"):
        witness.cosign(body, 2**63)
    with pytest.raises(InputError, match="refusing to cosign"):
        witness.cosign("not a checkpoint\n", 1)
