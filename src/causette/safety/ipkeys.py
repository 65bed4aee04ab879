"""Keyed IP hashes: how Causette recognises a connection's network without keeping its address.

An IPv4 address counts as itself; an IPv6 address counts by its /64 (one subscriber usually holds a
whole /64, so banning one address of it would be useless). The key is an HMAC-SHA-256 with the
instance's secret: without the secret, a hash reveals nothing and cannot be matched to an address.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from causette.errors import ConfigError

if TYPE_CHECKING:
    from causette.config import Config


def network_of(address: str) -> str:
    """The part of an address that identifies a subscriber: IPv4 /32, IPv6 /64."""
    ip = ipaddress.ip_address(address.strip().split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped
        if mapped is not None:
            return str(mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def ip_key(secret: bytes, address: str) -> str:
    """A 128-bit keyed hash of the address's network, as 32 hex characters."""
    digest = hmac.new(secret, network_of(address).encode("ascii"), hashlib.sha256).digest()
    return digest[:16].hex()


def load_secret(config: Config) -> bytes:
    """The instance secret: from the configuration, else from its file, created on first start
    (mode 0600). Several nodes must share it, or their hashes and ban cookies disagree."""
    safety = config.safety
    if safety.secret_key:
        return bytes.fromhex(safety.secret_key)
    path = Path(safety.secret_key_file or Path(config.server.data_dir) / "secret.key")
    try:
        text = path.read_text("ascii").strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        value = secrets.token_hex(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it meanwhile: use theirs
            return load_secret(config)
        with os.fdopen(fd, "w") as fh:
            fh.write(value + "\n")
        return bytes.fromhex(value)
    except OSError as exc:
        raise ConfigError(detail=f"secret key file {path}: {exc.strerror}") from exc
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        secret = b""
    if len(secret) != 32:
        raise ConfigError(detail=f"secret key file {path}: expected 64 hex characters")
    return secret
