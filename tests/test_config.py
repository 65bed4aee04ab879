from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from causette.config import Config, load_config
from causette.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_example_file_is_exactly_the_defaults() -> None:
    # The example documents every key with its default: loading it must change nothing.
    assert load_config(ROOT / "causette.example.toml", env={}) == load_config(None, env={})


@pytest.mark.parametrize("section", ["server", "site", "messages", "sessions", "limits", "safety"])
def test_every_key_is_documented(section: str) -> None:
    example = (ROOT / "causette.example.toml").read_text()
    reference = (ROOT / "docs" / "configuration.md").read_text()
    struct = type(getattr(Config(), section))
    for name in struct.__struct_fields__:
        assert f"\n{name} = " in example, f"{section}.{name} missing from causette.example.toml"
        assert f"`{name}`" in reference, f"{section}.{name} missing from docs/configuration.md"


def test_environment_overrides_file_and_converts_types(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[server]\nport = 9000\n[messages]\nlifetime_minutes = 60\n")
    config = load_config(
        path,
        env={
            "CAUSETTE_SERVER__PORT": "9100",
            "CAUSETTE_SERVER__TRUST_PROXY_HEADERS": "true",
            "CAUSETTE_SERVER__ALLOWED_ORIGINS": '["https://chat.example.org"]',
            "UNRELATED": "x",
        },
    )
    assert config.server.port == 9100
    assert config.server.trust_proxy_headers is True
    assert config.server.allowed_origins == ["https://chat.example.org"]
    assert config.messages.lifetime_minutes == 60
    assert config.lifetime_ms == 3_600_000


def test_default_database_is_sqlite_in_the_data_dir() -> None:
    config = load_config(None, env={}, overrides={"server": {"data_dir": "/srv/c"}})
    assert config.database_url == "sqlite:////srv/c/causette.db"  # absolute path: 4 slashes


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("[messages]\nlifetime_minutes = 0\n", "$.messages.lifetime_minutes"),
        ("[server]\nport = 'eighty'\n", "$.server.port"),
        ("[server]\nprot = 80\n", "prot"),
        ("[site]\nmin_age = 30\nmax_age = 20\n", "max_age"),
        ("[[rooms]]\nslug = 'a'\nname = 'A'\n[[rooms]]\nslug = 'a'\nname = 'B'\n", "duplicate"),
        ("[[rooms]]\nslug = 'Bad Slug'\nname = 'A'\n", "slug"),
        ("[[rooms]]\nslug = 'kids'\nname = 'K'\nmin_age = 13\n", "below site.min_age"),
        ("[server]\nbus_url = 'amqp://x'\n", "bus_url"),
        ("[server]\nallowed_origins = ['chat.example.org']\n", "allowed_origins"),
        ("not toml [", "c.toml"),
    ],
)
def test_invalid_configuration_names_the_key(tmp_path: Path, toml: str, expected: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert expected in info.value.message("en")


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config_invalid"):
        load_config(tmp_path / "nope.toml", env={})


def test_rooms_table_replaces_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[[rooms]]\nslug = 'apero'\nname = 'Apéro'\nmin_age = 21\n")
    config = load_config(path, env={})
    assert [r.slug for r in config.rooms] == ["apero"]
    assert config.room("apero") is not None
    assert config.room("general") is None


def test_default_rooms_cover_topics_and_every_region() -> None:
    config = Config()
    slugs = [r.slug for r in config.rooms]
    for topic in (
        "general",
        "cuisine",
        "cinema-series",
        "musique",
        "sport",
        "jeux-video",
        "voyages",
        "outre-mer",
    ):
        assert topic in slugs
    regions = {code for r in config.rooms for code in r.regions}
    metropolitan = {"11", "24", "27", "28", "32", "44", "52", "53", "75", "76", "84", "93", "94"}
    assert metropolitan <= regions
    assert len(config.rooms) == 7 + 13 + 1
    # The config is plain data: it serialises (``causette check-config`` prints it).
    assert b'"general"' in msgspec.json.encode(config)
