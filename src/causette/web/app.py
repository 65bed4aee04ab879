"""The aiohttp application: wiring only."""

from __future__ import annotations

import gc
import logging
import time
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from causette.bus import open_bus
from causette.config import Config
from causette.core.clock import SystemClock
from causette.core.directory import Directory
from causette.core.moderation import ModerationService
from causette.core.ports import Bus, Clock, FullStore
from causette.core.service import ChatService
from causette.geo import Geo
from causette.ids import IdSource, RandomIds
from causette.safety.filters import TextFilter
from causette.safety.ipkeys import load_secret
from causette.store import open_store
from causette.web import http, moderation, ws
from causette.web.keys import CONFIG, GEO, MODERATION, NODE, PAGES, SECRET, SERVICE
from causette.web.node import Node

log = logging.getLogger(__name__)


class AccessLogger(AbstractAccessLogger):
    """Method, route template, status and duration: no address, no query string, no path
    parameters (a postal code in a URL is personal enough)."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        route = "?"
        match_info = getattr(request, "match_info", None)
        if match_info is not None and match_info.route.resource is not None:
            route = match_info.route.resource.canonical
        self.logger.info(
            "http",
            extra={
                "method": request.method,
                "route": route,
                "status": response.status,
                "ms": round(time * 1000, 1),
            },
        )

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


def static_dir() -> Path:
    return Path(str(resources.files("causette.web").joinpath("static")))


def create_app(
    config: Config,
    *,
    store: FullStore | None = None,
    bus: Bus | None = None,
    clock: Clock | None = None,
    ids: IdSource | None = None,
    geo: Geo | None = None,
) -> web.Application:
    """Build the application. Ports not given are opened from the configuration at startup."""
    app = web.Application(client_max_size=config.limits.max_body_bytes)
    app.on_response_prepare.append(http.add_security_headers)
    app[CONFIG] = config
    app[GEO] = geo or Geo.load()
    app[SECRET] = load_secret(config)
    app[PAGES] = http.Pages(config)
    http.add_routes(app)
    app.router.add_get("/ws", ws.websocket, name="ws")
    app.router.add_static("/static", static_dir(), name="static", append_version=False)

    async def startup(app: web.Application) -> None:
        started = time.monotonic()
        url = config.database_url
        # One node (SQLite) upgrades its schema itself; PostgreSQL is shared by several nodes,
        # so only ``causette migrate`` does (``SchemaBehind`` otherwise).
        the_store: FullStore = store or await open_store(
            url, migrate=url.startswith(("sqlite", "memory"))
        )
        try:
            the_bus = bus or await open_bus(config.server.bus_url)
        except BaseException:
            if store is None:
                await the_store.close()
            raise
        the_clock = clock or SystemClock()
        the_ids = ids or RandomIds()
        directory = Directory()
        filters = TextFilter.load(config.safety.wordlists, builtin=config.safety.builtin_wordlists)
        service = ChatService(
            config, the_store, the_clock, the_ids, app[GEO], directory, filters=filters
        )
        moderation = ModerationService(config, the_store, the_clock, the_ids, service, app[SECRET])
        node = Node(config, service, the_store, the_bus, the_clock, directory)
        app[SERVICE] = service
        app[MODERATION] = moderation
        app[NODE] = node
        await node.start()
        log.info("started", extra={"ms": round((time.monotonic() - started) * 1000)})

    async def shutdown(app: web.Application) -> None:
        if NODE in app:
            await app[NODE].shutdown()

    async def cleanup(app: web.Application) -> None:
        if NODE in app:
            node = app[NODE]
            await node.close()
            await node.store.close()

    app.on_startup.append(startup)
    moderation.add_routes(app)  # the console (/mod); after ``startup``, whose store it uses
    app.on_shutdown.append(shutdown)
    app.on_cleanup.append(cleanup)
    return app


#: The cyclic collector runs a young collection after this many net allocations (CPython's
#: default is 700), an older one every 20 of those, a full one every 20 older ones: fewer pauses.
GC_THRESHOLDS: tuple[int, int, int] = (20_000, 20, 20)


async def _settle_memory(_: web.Application) -> None:
    """Move what the start built (geography, word lists, modules, configuration: most of the
    process's objects) out of the cyclic collector's way. Measured with 1000 connections: full
    collections scanned them all and paused the loop 90-135 ms, the tail of message latency
    (docs/decisions/0006-message-path.md)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def run(config: Config, **kwargs: Any) -> None:
    loop = None
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux and macOS
        pass
    app = create_app(config)
    app.on_startup.append(_settle_memory)

    def announce(_: str) -> None:
        host = config.server.host
        shown = f"[{host}]" if ":" in host else host
        print(
            f"Causette listening on http://{shown}:{config.server.port} (Ctrl+C to stop)",
            flush=True,
        )

    web.run_app(
        app,
        host=config.server.host,
        port=config.server.port,
        access_log_class=AccessLogger,
        access_log=logging.getLogger("causette.access"),
        print=announce,
        shutdown_timeout=config.server.shutdown_grace_seconds + 5,
        loop=loop,
        handle_signals=True,
        **kwargs,
    )
