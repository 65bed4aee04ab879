"""Headless Chromium (Debian's package) driven by Playwright. Nothing is downloaded: without
/usr/bin/chromium these tests skip (or fail under CAUSETTE_TEST_REQUIRE_ALL=1)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page, async_playwright

from tests.conftest import require

CHROMIUM = os.environ.get("CAUSETTE_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 360, "height": 740}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

pytestmark = pytest.mark.e2e


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    require(
        os.path.exists(CHROMIUM),  # noqa: ASYNC240 - a single stat before starting the browser
        "Chromium",
        "install Debian's chromium (apt-get install chromium) or set CAUSETTE_CHROMIUM",
    )
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        await b.close()


class PageProblems:
    """Collects what a page must never show: script errors and CSP violations."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def watch(self, page: Page) -> None:
        page.on("pageerror", lambda exc: self.items.append(f"pageerror: {exc}"))
        page.on("console", self._console)

    def _console(self, msg: ConsoleMessage) -> None:
        text = msg.text
        if msg.type == "error" and not text.startswith("Failed to load resource"):
            self.items.append(f"console: {text}")
        if "Content Security Policy" in text or "Refused to" in text:
            self.items.append(f"csp: {text}")


@pytest.fixture
def problems() -> PageProblems:
    return PageProblems()


async def new_page(
    browser: Browser, problems: PageProblems, viewport: dict[str, int] = DESKTOP
) -> tuple[BrowserContext, Page]:
    context = await browser.new_context(viewport=viewport, locale="fr-FR")  # type: ignore[arg-type]
    page = await context.new_page()
    problems.watch(page)
    return context, page
