"""Small pieces of wording shared by the services' messages (French and English)."""

from __future__ import annotations

import time

_WHAT = {
    "reports": ("trop de signalements", "too many reports"),
    "messages": ("vous écrivez trop vite", "you are writing too fast"),
    "conversations": ("trop de nouvelles conversations", "too many new conversations"),
    "joins": ("trop de salons rejoints", "too many rooms joined"),
    "sessions": ("trop de nouvelles sessions", "too many new sessions"),
    "lookups": ("trop de consultations", "too many lookups"),
    "appeals": ("trop de recours", "too many appeals"),
}


def what(kind: str, lang: str) -> str:
    """What a rate limit is about, for ``RateLimited``."""
    fr, en = _WHAT[kind]
    return en if lang == "en" else fr


def seconds(ms: int) -> int:
    """A wait in whole seconds, at least one."""
    return max(1, (ms + 999) // 1000)


def clock_time(ms: int) -> str:
    return time.strftime("%H:%M UTC", time.gmtime(ms / 1000))


def until_text(expires_at: int | None, lang: str) -> str:
    if expires_at is None:
        return "sans limite de durée" if lang == "fr" else "with no end date"
    stamp = time.strftime("%d/%m/%Y %H:%M UTC", time.gmtime(expires_at / 1000))
    return f"jusqu'au {stamp}" if lang == "fr" else f"until {stamp}"
