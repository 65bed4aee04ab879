"""Configuration: one TOML file plus ``CAUSETTE_<SECTION>__<KEY>`` environment variables.

Read once at start into a frozen object and validated with clear errors (``ConfigError``).
No global: the object is passed to whoever needs it.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

from causette.errors import ConfigError

PositiveInt = Annotated[int, Meta(ge=1)]
Port = Annotated[int, Meta(ge=0, le=65535)]
Age = Annotated[int, Meta(ge=13, le=120)]


class ServerConfig(Struct, frozen=True, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    port: Port = 8000
    #: Where the SQLite database and other local state live.
    data_dir: str = "causette-data"
    #: ``sqlite:///path`` (default: ``<data_dir>/causette.db``) or ``postgresql://…``.
    database_url: str = ""
    #: ``local://`` (in-process, one node) or ``redis://host:port/db``.
    bus_url: str = "local://"
    #: Origins allowed besides the one the request was addressed to (e.g. behind a proxy that
    #: rewrites Host). Each is ``scheme://host[:port]``.
    allowed_origins: list[str] = []
    #: Trust ``X-Forwarded-For`` / ``X-Forwarded-Proto`` (only behind your own reverse proxy).
    trust_proxy_headers: bool = False
    #: Seconds given to clients to receive the shutdown notice before connections are closed.
    shutdown_grace_seconds: Annotated[float, Meta(ge=0, le=60)] = 2.0
    #: Several nodes: how often each tells the others it is alive, and after how long without
    #: news a node is taken for dead (its people are then released after the offline grace).
    node_heartbeat_seconds: Annotated[float, Meta(ge=0.1, le=60)] = 2.0
    node_timeout_seconds: Annotated[float, Meta(ge=0.3, le=600)] = 6.0
    #: Log format: ``json`` (one object per line) or ``text``.
    log_format: Literal["json", "text"] = "json"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class SiteConfig(Struct, frozen=True, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=40)] = "Causette"
    #: Minimum age to enter (adults only by default).
    min_age: Age = 18
    max_age: Age = 99
    default_lang: Literal["fr", "en"] = "fr"
    #: Optional path to a UTF-8 text file with the rules shown at entry (French); else built-in.
    rules_file: str = ""
    rules_file_en: str = ""
    #: Pseudonyms nobody may take (compared after case and look-alike folding). Names starting
    #: with one of ``reserved_prefixes`` are refused too.
    reserved_pseudonyms: list[str] = msgspec.field(
        default_factory=lambda: [
            "admin",
            "administrateur",
            "administrator",
            "moderateur",
            "moderatrice",
            "moderator",
            "modo",
            "causette",
            "systeme",
            "system",
            "root",
            "support",
            "staff",
            "police",
            "gendarmerie",
            "justice",
            "equipe",
            "team",
            "bot",
            "anonyme",
        ]
    )
    reserved_prefixes: list[str] = msgspec.field(
        default_factory=lambda: ["admin", "moderat", "modo", "causette", "staff"]
    )


class MessagesConfig(Struct, frozen=True, forbid_unknown_fields=True):
    #: How long messages stay visible, then are purged.
    lifetime_minutes: Annotated[int, Meta(ge=1, le=7 * 24 * 60)] = 180
    max_chars: Annotated[int, Meta(ge=1, le=20000)] = 1000
    #: Most messages of a stream sent to a newcomer or on reload.
    history_limit: Annotated[int, Meta(ge=1, le=5000)] = 200
    purge_interval_seconds: Annotated[int, Meta(ge=1, le=3600)] = 60


class SessionsConfig(Struct, frozen=True, forbid_unknown_fields=True):
    #: A session with no open connection for this long ends (pseudonym freed, rooms left).
    idle_timeout_minutes: Annotated[int, Meta(ge=1, le=24 * 60)] = 15
    #: A person whose connection dropped stays listed this long before shown as gone.
    offline_grace_seconds: Annotated[int, Meta(ge=0, le=600)] = 20
    max_rooms: Annotated[int, Meta(ge=1, le=100)] = 12
    max_blocks: Annotated[int, Meta(ge=1, le=10000)] = 500
    cookie_name: Annotated[str, Meta(pattern=r"^[A-Za-z0-9_]{1,40}$")] = "causette_session"


class LimitsConfig(Struct, frozen=True, forbid_unknown_fields=True):
    #: Largest WebSocket frame accepted; a larger one is answered with ``frame_too_large``.
    max_frame_bytes: Annotated[int, Meta(ge=256, le=1 << 20)] = 16384
    #: Frames above this are not even read: the connection is closed with code 1009.
    hard_frame_bytes: Annotated[int, Meta(ge=256, le=16 << 20)] = 262144
    #: Bytes a connection may leave unsent (its socket's backlog) from one event-loop tick to
    #: the next; a connection further behind is disconnected and resumes.
    max_send_queue_bytes: Annotated[int, Meta(ge=65536)] = 1 << 20
    #: Missed messages replayed per stream on resume; beyond, the client reloads the stream.
    resume_max_replay: Annotated[int, Meta(ge=1, le=10000)] = 500
    #: Commands per second a connection may send (token bucket), with a burst allowance.
    commands_per_second: Annotated[float, Meta(gt=0)] = 20.0
    commands_burst: PositiveInt = 40
    #: WebSocket ping interval; a peer that does not answer is disconnected.
    heartbeat_seconds: Annotated[float, Meta(ge=1, le=600)] = 30.0
    #: Largest HTTP request body (entry form, API).
    max_body_bytes: Annotated[int, Meta(ge=1024, le=1 << 20)] = 16384


Rate = Annotated[float, Meta(gt=0)]


class SafetyConfig(Struct, frozen=True, forbid_unknown_fields=True):
    #: The instance secret: keys the IP hashes and signs ban cookies. Empty: read (or create on
    #: first start) ``secret_key_file``. Several nodes must share one. 64 hex characters.
    secret_key: Annotated[str, Meta(pattern=r"^([0-9a-fA-F]{64})?$")] = ""
    #: Default ``<data_dir>/secret.key`` (created with mode 0600).
    secret_key_file: str = ""
    #: Word and pattern lists (see docs/moderation.md); the built-in starter lists come first.
    wordlists: list[str] = []
    builtin_wordlists: bool = True
    #: Messages per second one person may send (token bucket), and the burst allowed.
    message_rate: Rate = 1.0
    message_burst: PositiveInt = 8
    #: The same for everyone behind one network (IPv4 address or IPv6 /64) together.
    network_message_rate: Rate = 10.0
    network_message_burst: PositiveInt = 40
    #: The same text sent this many times within the window is refused as a flood.
    duplicate_max: PositiveInt = 3
    duplicate_window_seconds: PositiveInt = 60
    #: New sessions: during their first minutes, a slower message rate and no private message
    #: to someone who has not talked with them in a room.
    new_session_minutes: Annotated[int, Meta(ge=0, le=1440)] = 5
    new_session_message_rate: Rate = 0.25
    new_session_message_burst: PositiveInt = 4
    #: New private conversations one person may start per hour (burst allowed).
    conversations_per_hour: Rate = 30.0
    conversation_burst: PositiveInt = 5
    joins_per_minute: Rate = 20.0
    join_burst: PositiveInt = 10
    reports_per_hour: Rate = 20.0
    report_burst: PositiveInt = 5
    #: New sessions per hour from one network, with a burst; and open WebSockets per network.
    sessions_per_hour_per_network: Rate = 30.0
    session_burst_per_network: PositiveInt = 10
    max_connections_per_network: PositiveInt = 20
    #: Reports from this many distinct networks about one person within the window mute them
    #: automatically, pending a moderator's review (0 disables).
    auto_mute_reporters: Annotated[int, Meta(ge=0)] = 3
    auto_mute_window_minutes: PositiveInt = 30
    auto_mute_minutes: PositiveInt = 60
    #: How long after a decision it can be appealed (DSA art. 20: at least six months).
    appeal_days: Annotated[int, Meta(ge=183)] = 183
    #: Messages before a reported one frozen with it as context.
    evidence_context: Annotated[int, Meta(ge=0, le=100)] = 10


class RoomConfig(Struct, frozen=True, forbid_unknown_fields=True):
    slug: Annotated[str, Meta(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")]
    name: Annotated[str, Meta(min_length=1, max_length=60)]
    name_en: str = ""
    description: Annotated[str, Meta(max_length=500)] = ""
    description_en: Annotated[str, Meta(max_length=500)] = ""
    rules: Annotated[str, Meta(max_length=2000)] = ""
    rules_en: Annotated[str, Meta(max_length=2000)] = ""
    #: Minimum age in this room; unset means the site's minimum (never below it).
    min_age: Age | None = None
    #: A room for adult topics (shown with a mark; never available to a teen space).
    adult: bool = False
    #: INSEE region codes this room is about (a regional room), to suggest it to people there.
    regions: list[str] = []


def _room(
    slug: str,
    name: str,
    name_en: str,
    description: str,
    description_en: str,
    regions: list[str] | None = None,
) -> RoomConfig:
    return RoomConfig(
        slug=slug,
        name=name,
        name_en=name_en,
        description=description,
        description_en=description_en,
        regions=regions or [],
    )


# The 13 metropolitan regions (INSEE codes) and one room for the overseas regions.
_REGION_ROOMS: list[tuple[str, str, list[str]]] = [
    ("auvergne-rhone-alpes", "Auvergne-Rhône-Alpes", ["84"]),
    ("bourgogne-franche-comte", "Bourgogne-Franche-Comté", ["27"]),
    ("bretagne", "Bretagne", ["53"]),
    ("centre-val-de-loire", "Centre-Val de Loire", ["24"]),
    ("corse", "Corse", ["94"]),
    ("grand-est", "Grand Est", ["44"]),
    ("hauts-de-france", "Hauts-de-France", ["32"]),
    ("ile-de-france", "Île-de-France", ["11"]),
    ("normandie", "Normandie", ["28"]),
    ("nouvelle-aquitaine", "Nouvelle-Aquitaine", ["75"]),
    ("occitanie", "Occitanie", ["76"]),
    ("pays-de-la-loire", "Pays de la Loire", ["52"]),
    ("provence-alpes-cote-d-azur", "Provence-Alpes-Côte d'Azur", ["93"]),
    ("outre-mer", "Outre-mer", ["01", "02", "03", "04", "06"]),
]


def default_rooms() -> list[RoomConfig]:
    rooms = [
        _room(
            "general",
            "Général",
            "General",
            "Pour parler de tout et de rien.",
            "Talk about anything and everything.",
        ),
        _room(
            "cuisine",
            "Cuisine",
            "Cooking",
            "Recettes, restaurants et bons plans.",
            "Recipes, restaurants and good finds.",
        ),
        _room(
            "cinema-series",
            "Cinéma & séries",
            "Films & series",
            "Ce que vous regardez, ce que vous conseillez.",
            "What you watch, what you recommend.",
        ),
        _room(
            "musique",
            "Musique",
            "Music",
            "Concerts, découvertes, playlists.",
            "Concerts, discoveries, playlists.",
        ),
        _room(
            "sport",
            "Sport",
            "Sport",
            "Matchs, entraînements et résultats.",
            "Games, training and results.",
        ),
        _room(
            "jeux-video",
            "Jeux vidéo",
            "Video games",
            "Consoles, PC, mobile, rétro.",
            "Consoles, PC, mobile, retro.",
        ),
        _room(
            "voyages",
            "Voyages",
            "Travel",
            "Destinations, conseils et récits.",
            "Destinations, tips and stories.",
        ),
    ]
    for slug, name, regions in _REGION_ROOMS:
        label = "les régions d'outre-mer" if slug == "outre-mer" else name
        label_en = "the overseas regions" if slug == "outre-mer" else name
        rooms.append(
            _room(
                slug,
                name,
                "Overseas France" if slug == "outre-mer" else name,
                f"Le salon régional : {label}.",
                f"The regional room: {label_en}.",
                regions,
            )
        )
    return rooms


class Config(Struct, frozen=True, forbid_unknown_fields=True):
    server: ServerConfig = ServerConfig()
    site: SiteConfig = SiteConfig()
    messages: MessagesConfig = MessagesConfig()
    sessions: SessionsConfig = SessionsConfig()
    limits: LimitsConfig = LimitsConfig()
    safety: SafetyConfig = SafetyConfig()
    rooms: list[RoomConfig] = msgspec.field(default_factory=default_rooms)

    def room_min_age(self, room: RoomConfig) -> int:
        return max(room.min_age or 0, self.site.min_age)

    @property
    def database_url(self) -> str:
        if self.server.database_url:
            return self.server.database_url
        return f"sqlite:///{Path(self.server.data_dir) / 'causette.db'}"

    @property
    def lifetime_ms(self) -> int:
        return self.messages.lifetime_minutes * 60_000

    def room(self, slug: str) -> RoomConfig | None:
        for room in self.rooms:
            if room.slug == slug:
                return room
        return None


ENV_PREFIX = "CAUSETTE_"


def _env_overrides(env: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """``CAUSETTE_SERVER__PORT=9000`` → ``{"server": {"port": "9000"}}`` (converted later).

    Lists are given as TOML arrays: ``CAUSETTE_SERVER__ALLOWED_ORIGINS='["https://a.example"]'``.
    """
    out: dict[str, dict[str, Any]] = {}
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX) :].lower().partition("__")
        value: Any = raw
        if raw.startswith("["):
            try:
                value = tomllib.loads(f"v = {raw}")["v"]
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(detail=f"{name}: not a TOML array ({exc})") from exc
        out.setdefault(section, {})[key] = value
    return out


def _merge(base: dict[str, Any], overrides: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    merged = dict(base)
    for section, values in overrides.items():
        current = merged.get(section, {})
        if not isinstance(current, dict):
            raise ConfigError(detail=f"[{section}] is not a table")
        merged[section] = {**current, **values}
    return merged


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Config:
    """Read the TOML file (if any), then environment variables, then explicit overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError as exc:
            raise ConfigError(detail=f"file not found: {path}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(detail=f"{path}: {exc}") from exc
    data = _merge(data, _env_overrides(os.environ if env is None else env))
    if overrides:
        data = _merge(data, overrides)
    try:
        # strict=False lets environment strings such as "9000" or "true" become int / bool.
        config = msgspec.convert(data, Config, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(detail=str(exc)) from exc
    _check(config)
    return config


def _check(config: Config) -> None:
    problems: list[str] = []
    if config.site.max_age <= config.site.min_age:
        problems.append("site.max_age must be greater than site.min_age")
    if config.server.node_timeout_seconds < 2 * config.server.node_heartbeat_seconds:
        problems.append(
            "server.node_timeout_seconds must be at least twice server.node_heartbeat_seconds"
        )
    if config.limits.hard_frame_bytes < config.limits.max_frame_bytes:
        problems.append("limits.hard_frame_bytes must be at least limits.max_frame_bytes")
    slugs = [room.slug for room in config.rooms]
    duplicates = sorted({s for s in slugs if slugs.count(s) > 1})
    if duplicates:
        problems.append(f"duplicate room slugs: {', '.join(duplicates)}")
    if not config.rooms:
        problems.append("at least one room is needed")
    for room in config.rooms:
        if room.min_age is not None and room.min_age < config.site.min_age:
            problems.append(
                f"room {room.slug!r}: min_age {room.min_age} is below site.min_age "
                f"{config.site.min_age}"
            )
    for origin in config.server.allowed_origins:
        if not origin.startswith(("http://", "https://")) or origin.count("/") != 2:
            problems.append(f"server.allowed_origins: {origin!r} is not scheme://host[:port]")
    url = config.database_url
    if not url.startswith(("sqlite:", "postgresql:", "postgresql+asyncpg:", "memory:")):
        problems.append(f"server.database_url: unsupported scheme in {url.split(':', 1)[0]!r}")
    if not config.server.bus_url.startswith(("local:", "redis:", "rediss:")):
        problems.append("server.bus_url must start with local:// or redis://")
    if problems:
        raise ConfigError(detail="; ".join(problems))
