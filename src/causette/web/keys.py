"""Typed keys for what the aiohttp application holds."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from causette.config import Config
from causette.geo import Geo

if TYPE_CHECKING:
    from causette.core.moderation import ModerationService
    from causette.core.service import ChatService
    from causette.safety.accounts import Accounts
    from causette.web.http import Pages
    from causette.web.moderation import Console
    from causette.web.node import Node

CONFIG = web.AppKey("config", Config)
GEO = web.AppKey("geo", Geo)
SERVICE: web.AppKey[ChatService] = web.AppKey("service")
NODE: web.AppKey[Node] = web.AppKey("node")
PAGES: web.AppKey[Pages] = web.AppKey("pages")
MODERATION: web.AppKey[ModerationService] = web.AppKey("moderation")
#: Moderator accounts (console logins), created at startup over the app's store.
ACCOUNTS: web.AppKey[Accounts] = web.AppKey("accounts")
#: The moderators' console: its page and its live connections.
CONSOLE: web.AppKey[Console] = web.AppKey("console")
#: The instance secret (keys IP hashes, signs ban cookies): never logged, never sent.
SECRET = web.AppKey("secret", bytes)
