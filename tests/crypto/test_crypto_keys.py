"""The local root key file: created owner-only, refused when others can read it or it is bad."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from custodes.crypto import LocalKeyFile, RootKeys
from custodes.errors import ConfigError, InputError


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _write(path: Path, body: object, mode: int = 0o600) -> Path:
    path.write_text(body if isinstance(body, str) else json.dumps(body))
    path.chmod(mode)
    return path


def _valid_body() -> dict[str, object]:
    return {
        "format": "custodes-root-key",
        "version": 1,
        "key_id": "0123456789abcdef",
        "secret": base64.b64encode(bytes(range(32))).decode(),
    }


def test_create_writes_owner_only_file_and_private_dirs(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "root.key"
    created = LocalKeyFile.create(path)
    assert _mode(path) == 0o600
    assert _mode(path.parent) == 0o700
    assert _mode(path.parent.parent) == 0o700
    body = json.loads(path.read_text())
    assert body["format"] == "custodes-root-key"
    assert body["version"] == 1
    assert len(body["key_id"]) == 16
    int(body["key_id"], 16)
    assert len(base64.b64decode(body["secret"], validate=True)) == 32
    assert body["key_id"] == created.key_id


def test_create_is_private_even_with_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        path = LocalKeyFile.create(tmp_path / "k" / "root.key").path
    finally:
        os.umask(old)
    assert _mode(path) == 0o600
    assert _mode(path.parent) == 0o700


def test_reopened_file_derives_the_same_keys(tmp_path: Path) -> None:
    path = tmp_path / "root.key"
    created = LocalKeyFile.create(path)
    opened = LocalKeyFile.open(path)
    assert opened.key_id == created.key_id
    assert opened.root_keys("t") == created.root_keys("t")


def test_two_created_files_differ(tmp_path: Path) -> None:
    one = LocalKeyFile.create(tmp_path / "1.key").root_keys("t")
    two = LocalKeyFile.create(tmp_path / "2.key").root_keys("t")
    assert one.kek != two.kek
    assert one.key_id != two.key_id


def test_create_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "root.key"
    LocalKeyFile.create(path)
    before = path.read_bytes()
    with pytest.raises(ConfigError, match="already exists"):
        LocalKeyFile.create(path)
    assert path.read_bytes() == before


def test_create_refuses_to_follow_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    link = tmp_path / "root.key"
    link.symlink_to(target)
    with pytest.raises(ConfigError):
        LocalKeyFile.create(link)
    assert not target.exists()


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o601])
def test_open_refuses_a_file_others_can_access(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "root.key"
    LocalKeyFile.create(path)
    path.chmod(mode)
    with pytest.raises(ConfigError, match=f"by others \\(mode {mode:04o}\\); run chmod 600"):
        LocalKeyFile.open(path)


def test_open_names_readable_mode(tmp_path: Path) -> None:
    path = LocalKeyFile.create(tmp_path / "root.key").path
    path.chmod(0o644)
    with pytest.raises(ConfigError, match=r"readable by others \(mode 0644\)"):
        LocalKeyFile.open(path)


def test_open_accepts_owner_read_only(tmp_path: Path) -> None:
    path = LocalKeyFile.create(tmp_path / "root.key").path
    path.chmod(0o400)
    assert LocalKeyFile.open(path).key_id


def test_open_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no root key file"):
        LocalKeyFile.open(tmp_path / "root.key")


def test_open_a_directory(tmp_path: Path) -> None:
    path = tmp_path / "root.key"
    path.mkdir(mode=0o700)
    with pytest.raises(ConfigError):
        LocalKeyFile.open(path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_open_unreadable_file(tmp_path: Path) -> None:
    path = LocalKeyFile.create(tmp_path / "root.key").path
    path.chmod(0o000)
    with pytest.raises(ConfigError, match="cannot open"):
        LocalKeyFile.open(path)


def _variant(**changes: object) -> dict[str, object]:
    body = _valid_body()
    for key, value in changes.items():
        if value is None:
            del body[key]
        else:
            body[key] = value
    return body


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{not json", "invalid JSON"),
        ("\xff\xfe", "invalid JSON"),
        ("[1, 2]", "format"),
        (_variant(format="something-else"), "format"),
        (_variant(format=None), "format"),
        (_variant(version=2), "version"),
        (_variant(version="1"), "version"),
        (_variant(key_id="XYZ"), "key_id"),
        (_variant(key_id=None), "key_id"),
        (_variant(secret=None), "secret"),
        (_variant(secret=123), "secret"),
        (_variant(secret="not base64 !!"), "base64"),
        (_variant(secret=base64.b64encode(b"x" * 31).decode()), "32 bytes"),
        (_variant(secret=base64.b64encode(b"x" * 33).decode()), "32 bytes"),
    ],
)
def test_open_refuses_malformed_files(tmp_path: Path, body: object, message: str) -> None:
    path = _write(tmp_path / "root.key", body)
    with pytest.raises(ConfigError, match=message) as caught:
        LocalKeyFile.open(path)
    assert str(tmp_path) in str(caught.value)


def test_error_messages_never_show_the_secret(tmp_path: Path) -> None:
    secret = base64.b64encode(b"y" * 31).decode()
    path = _write(tmp_path / "root.key", _variant(secret=secret))
    with pytest.raises(ConfigError) as caught:
        LocalKeyFile.open(path)
    assert secret not in str(caught.value)


def test_derived_keys_are_distinct_and_per_tenant(key_file: LocalKeyFile) -> None:
    a = key_file.root_keys("tenant-a")
    b = key_file.root_keys("tenant-b")
    keys_a = [a.kek, a.index_key, a.pseudonym_key, a.audit_key]
    keys_b = [b.kek, b.index_key, b.pseudonym_key, b.audit_key]
    assert len(set(keys_a + keys_b)) == 8
    assert all(len(k) == 32 for k in keys_a)
    assert a.key_id == key_file.key_id


def test_tenant_must_be_nonempty_text(key_file: LocalKeyFile) -> None:
    with pytest.raises(InputError, match="tenant"):
        key_file.root_keys("")
    with pytest.raises(InputError, match="tenant"):
        key_file.root_keys("\udc80")


def test_root_keys_reject_wrong_lengths_and_reuse() -> None:
    good = [bytes([i]) * 32 for i in range(4)]
    with pytest.raises(ConfigError, match="kek must be 32 bytes"):
        RootKeys("k", b"short", *good[1:])
    with pytest.raises(ConfigError, match="differ"):
        RootKeys("k", good[0], good[0], good[2], good[3])
