"""Settings: every one documented, bad ones refused with a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from custodes.config import SETTINGS_HELP, Settings
from custodes.errors import ConfigError

DOCS = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


def test_every_setting_is_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    missing = [key for key in SETTINGS_HELP if f"`{key}`" not in text]
    assert missing == []


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ({"nonsense": 1}, "unknown setting"),
        ({"store": {"backend": "mysql"}}, "store.backend"),
        ({"store": {"backend": "postgres"}}, "store.url"),
        ({"store": {"colour": "red"}}, "unknown setting"),
        ({"limits": {"find_cap": 0}}, "limits.find_cap"),
        ({"limits": {"find_cap": True}}, "limits.find_cap"),
        ({"store": {"durability": "maybe"}}, "store.durability"),
        ({"keys": {"dir": "data"}}, "keys.dir"),
        ({"store": {"mmap_mib": -1}}, "store.mmap_mib"),
        ({"store": {"mmap_mib": "1G"}}, "store.mmap_mib"),
    ],
)
def test_bad_settings_are_refused(raw: dict[str, object], needle: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=needle):
        Settings.from_mapping(tmp_path, raw, env={})


def test_missing_and_invalid_files_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="custodes init"):
        Settings.load(tmp_path)
    (tmp_path / "custodes.toml").write_text("tenant = [", encoding="utf-8")
    with pytest.raises(ConfigError, match="invalid TOML"):
        Settings.load(tmp_path)


def test_environment_overrides_the_store(tmp_path: Path) -> None:
    env = {"CUSTODES_STORE_BACKEND": "postgres", "CUSTODES_STORE_URL": "postgresql://x/y"}
    settings = Settings.from_mapping(tmp_path, {}, env=env)
    assert (settings.store.backend, settings.store.url) == ("postgres", "postgresql://x/y")


@pytest.mark.parametrize(("raw", "mib"), [({}, 1024), ({"mmap_mib": 0}, 0), ({"mmap_mib": 64}, 64)])
def test_sqlite_memory_map_is_configured(raw: dict[str, object], mib: int, tmp_path: Path) -> None:
    from custodes.store import open_store

    settings = Settings.from_mapping(tmp_path, {"store": raw}, env={})
    store = open_store(settings.store)
    try:
        (size,) = store._conn.execute("PRAGMA mmap_size").fetchone()  # type: ignore[attr-defined]
    finally:
        store.close()
    assert size == mib * 1024 * 1024
