"""Test configurations. Automatic protections (rates, slow mode for new sessions, flood
detection, auto-mute, per-network limits) are relaxed by default so that tests about other
behaviour are not shaped by them; the tests of each protection ask for the real defaults with
``protections=True`` (and override what they need)."""

from __future__ import annotations

from typing import Any

RELAXED_SAFETY: dict[str, Any] = {
    "message_rate": 10_000.0,
    "message_burst": 10_000,
    "network_message_rate": 10_000.0,
    "network_message_burst": 10_000,
    "duplicate_max": 10_000,
    "new_session_minutes": 0,
    "conversations_per_hour": 1_000_000.0,
    "conversation_burst": 10_000,
    "joins_per_minute": 100_000.0,
    "join_burst": 10_000,
    "reports_per_hour": 1_000_000.0,
    "report_burst": 10_000,
    "sessions_per_hour_per_network": 1_000_000.0,
    "session_burst_per_network": 10_000,
    "max_connections_per_network": 10_000,
    "auto_mute_reporters": 0,
}


def with_safety(
    sections: dict[str, dict[str, Any]], protections: bool
) -> dict[str, dict[str, Any]]:
    """``sections`` with the relaxed safety values under any the test gave."""
    out = {name: dict(values) for name, values in sections.items()}
    if not protections:
        out["safety"] = {**RELAXED_SAFETY, **out.get("safety", {})}
    return out
