from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from causette.config import load_config
from causette.errors import ConfigError
from causette.safety.ipkeys import ip_key, load_secret, network_of

SECRET = b"s" * 32


def test_ipv4_counts_by_address_and_ipv6_by_its_64() -> None:
    assert network_of("192.0.2.7") == "192.0.2.7"
    assert network_of("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64"
    assert ip_key(SECRET, "2001:db8:1:2::1") == ip_key(SECRET, "2001:db8:1:2:ffff:ffff:ffff:ffff")
    assert ip_key(SECRET, "2001:db8:1:2::1") != ip_key(SECRET, "2001:db8:1:3::1")
    assert ip_key(SECRET, "192.0.2.7") != ip_key(SECRET, "192.0.2.8")
    # An IPv4 client seen through an IPv6 socket is the same network.
    assert ip_key(SECRET, "::ffff:192.0.2.7") == ip_key(SECRET, "192.0.2.7")
    assert network_of("fe80::1%eth0") == "fe80::/64"


def test_the_hash_depends_on_the_secret_and_reveals_nothing() -> None:
    key = ip_key(SECRET, "192.0.2.7")
    assert len(key) == 32
    assert "192" not in key
    assert key != ip_key(b"t" * 32, "192.0.2.7")


def test_not_an_address_is_an_error() -> None:
    with pytest.raises(ValueError):
        ip_key(SECRET, "not an address")


def test_the_secret_is_created_once_private_and_reused(tmp_path: Path) -> None:
    config = load_config(None, env={}, overrides={"server": {"data_dir": str(tmp_path)}})
    first = load_secret(config)
    path = tmp_path / "secret.key"
    assert len(first) == 32
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_secret(config) == first


def test_a_configured_secret_wins_and_a_bad_file_is_refused(tmp_path: Path) -> None:
    given = "ab" * 32
    config = load_config(None, env={}, overrides={"safety": {"secret_key": given}})
    assert load_secret(config) == bytes.fromhex(given)
    bad = tmp_path / "bad.key"
    bad.write_text("not hex\n")
    config = load_config(None, env={}, overrides={"safety": {"secret_key_file": str(bad)}})
    with pytest.raises(ConfigError, match="config_invalid"):
        load_secret(config)
