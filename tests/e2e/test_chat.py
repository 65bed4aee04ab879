"""A person's path through the chat, in a real browser: enter, talk, private message, block."""

from __future__ import annotations

import re

from playwright.async_api import Browser, Locator, Page, expect

from tests.conftest import RunningServer
from tests.e2e.conftest import DESKTOP, PHONE, SCREENSHOTS, PageProblems, new_page

TIMEOUT = 10_000


async def enter(
    page: Page,
    url: str,
    pseudonym: str,
    gender: str,
    age: int,
    postal: str,
    commune: str | None = None,
) -> None:
    await page.goto(url)
    await page.get_by_test_id("entry-pseudonym").fill(pseudonym)
    await page.get_by_test_id(f"entry-gender-{gender}").check()
    await page.get_by_test_id("entry-age").fill(str(age))
    await page.get_by_test_id("entry-postal").fill(postal)
    if commune is not None:
        select = page.get_by_test_id("entry-commune")
        await expect(select).to_be_visible(timeout=TIMEOUT)
        await select.select_option(label=commune)
    else:
        await expect(page.get_by_test_id("entry-commune-single")).not_to_be_empty(timeout=TIMEOUT)
    await page.get_by_test_id("entry-accept").check()
    await page.get_by_test_id("entry-submit").click()
    await expect(page.get_by_test_id("conn-state")).to_have_attribute(
        "data-state", "connected", timeout=TIMEOUT
    )


async def say(page: Page, text: str) -> None:
    composer = page.get_by_test_id("composer")
    await composer.fill(text)
    await composer.press("Enter")


def message(page: Page, text: str) -> Locator:
    return page.get_by_test_id("msg-text").filter(has_text=text)


async def test_two_people_talk_privately_and_block(
    server: RunningServer,
    browser: Browser,
    problems: PageProblems,
) -> None:
    ctx_a, a = await new_page(browser, problems)
    ctx_b, b = await new_page(browser, problems)
    try:
        await enter(a, server.url, "Camille", "f", 34, "69001")
        # 01400 covers several communes: the form asks which one.
        await enter(
            b, server.url, "Bastien", "m", 28, "01400", commune="Châtillon-sur-Chalaronne (01)"
        )

        # Both join the same room from the sidebar.
        for page in (a, b):
            await page.get_by_test_id("room-general").click()
            await expect(page.get_by_test_id("conv-title")).to_have_text(
                re.compile("Général"), timeout=TIMEOUT
            )

        # Messages both ways, rendered as text, links only for http(s).
        await say(a, "Bonjour ! <b>pas du gras</b> https://example.org/page")
        await expect(message(b, "Bonjour !")).to_be_visible(timeout=TIMEOUT)
        assert await b.locator("[data-testid=msg-text] b").count() == 0
        link = message(b, "Bonjour !").locator("a")
        await expect(link).to_have_attribute("href", "https://example.org/page")
        await expect(link).to_have_attribute("rel", "nofollow noopener noreferrer ugc")
        await say(b, "Salut Camille, ça va ?")
        await expect(message(a, "Salut Camille")).to_be_visible(timeout=TIMEOUT)

        # The people list shows the other person with age and commune.
        row_a_in_b = b.get_by_test_id("people-row").filter(has_text="Camille")
        await expect(row_a_in_b).to_contain_text("34", timeout=TIMEOUT)
        await expect(row_a_in_b).to_contain_text("Lyon")

        # Bastien opens a private conversation from the list and writes.
        await row_a_in_b.get_by_test_id("people-dm").click()
        # The conversation opens when the server answers: write only once it is shown.
        await expect(b.get_by_test_id("conv-title")).to_contain_text("Camille", timeout=TIMEOUT)
        await say(b, "Un message rien que pour toi")
        conv_in_a = a.get_by_test_id("conv-item").filter(has_text="Bastien")
        await expect(conv_in_a.get_by_test_id("conv-unread")).to_have_text("1", timeout=TIMEOUT)
        await conv_in_a.click()
        await expect(message(a, "Un message rien que pour toi")).to_be_visible(timeout=TIMEOUT)
        await say(a, "Réponse privée")
        await expect(message(b, "Réponse privée")).to_be_visible(timeout=TIMEOUT)

        # A desktop screenshot of Camille's private conversation and the room around it.
        await a.get_by_test_id("room-general").click()
        await expect(message(a, "Salut Camille")).to_be_visible(timeout=TIMEOUT)
        # Live member counts (sent once a second when they change).
        await expect(a.get_by_test_id("room-general")).to_contain_text("2", timeout=TIMEOUT)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await a.screenshot(path=str(SCREENSHOTS / "chat-desktop.png"))

        # Camille blocks Bastien: he disappears from her list, she from his, and he can no
        # longer write to her privately.
        row_b_in_a = a.get_by_test_id("people-row").filter(has_text="Bastien")
        await row_b_in_a.get_by_test_id("people-block").click()
        await a.get_by_test_id("confirm-ok").click()
        await expect(a.get_by_test_id("people-row").filter(has_text="Bastien")).to_have_count(
            0, timeout=TIMEOUT
        )
        await expect(b.get_by_test_id("people-row").filter(has_text="Camille")).to_have_count(
            0, timeout=TIMEOUT
        )
        await b.get_by_test_id("conv-item").filter(has_text="Camille").click()
        await say(b, "Tu es là ?")
        await expect(b.get_by_test_id("msg-error")).to_be_visible(timeout=TIMEOUT)
        # Her room view hides what he writes from now on; his room messages still reach others.
        await b.get_by_test_id("room-general").click()
        await say(b, "Message après le blocage")
        await expect(message(b, "Message après le blocage")).to_be_visible(timeout=TIMEOUT)
        await expect(message(a, "Message après le blocage")).to_have_count(0)
    finally:
        await ctx_a.close()
        await ctx_b.close()
    assert problems.items == []


async def test_phone_width_tabs_and_reload_keeps_the_session(
    server: RunningServer,
    browser: Browser,
    problems: PageProblems,
) -> None:
    ctx, page = await new_page(browser, problems, PHONE)
    other = await server.visitor("Nadia", age=45, postal_code="13001")
    try:
        await other.join("general")
        await other.say("r:general", "Il fait beau à Marseille")
        await enter(page, server.url, "Lucas", "m", 23, "75011")
        # At phone width the columns fold into tabs.
        rooms_tab = page.get_by_test_id("tab-rooms")
        await expect(rooms_tab).to_be_visible()
        await rooms_tab.click()
        await page.get_by_test_id("room-general").click()
        await page.get_by_test_id("tab-chat").click()
        await expect(message(page, "Il fait beau")).to_be_visible(timeout=TIMEOUT)
        await say(page, "Bonjour de Paris")
        await other.expect_msg("r:general", lambda e: e["text"] == "Bonjour de Paris")
        # The sender's own copy is confirmed too: no longer marked "Envoi…".
        await expect(page.locator(".msg-status")).to_have_count(0, timeout=TIMEOUT)
        await page.screenshot(path=str(SCREENSHOTS / "chat-phone.png"))

        # A reload keeps the person and the room (same pseudonym, same history).
        await page.reload()
        await expect(page.get_by_test_id("conn-state")).to_have_attribute(
            "data-state", "connected", timeout=TIMEOUT
        )
        await page.get_by_test_id("tab-chat").click()
        await expect(message(page, "Bonjour de Paris")).to_be_visible(timeout=TIMEOUT)
        await other.send({"type": "people", "scope": "room", "room": "general"})
        people = await other.expect("people")
        assert sorted(p["name"] for p in people["items"]) == ["Lucas", "Nadia"]

        # Keyboard: the tabs move with the arrow keys.
        await page.get_by_test_id("tab-chat").focus()
        await page.keyboard.press("ArrowRight")
        await expect(page.get_by_test_id("tab-people")).to_be_focused()

        # "Quitter" ends the session: back to the entry form, pseudonym free again.
        await page.get_by_test_id("quit-button").click()
        await expect(page.get_by_test_id("entry-form")).to_be_visible(timeout=TIMEOUT)
        again = server.client()
        await again.enter("Lucas")
    finally:
        await ctx.close()
    assert problems.items == []


async def test_entry_errors_are_shown_next_to_their_fields_in_both_languages(
    server: RunningServer,
    browser: Browser,
    problems: PageProblems,
) -> None:
    ctx, page = await new_page(browser, problems, DESKTOP)
    taken = await server.visitor("Camille")
    try:
        await page.goto(server.url)
        await page.get_by_test_id("entry-pseudonym").fill("CAMILLE")
        await page.get_by_test_id("entry-gender-x").check()
        await page.get_by_test_id("entry-age").fill("16")
        await page.get_by_test_id("entry-postal").fill("99999")
        await page.get_by_test_id("entry-submit").click()
        pseudonym = page.get_by_test_id("entry-pseudonym")
        await expect(pseudonym).to_have_attribute("aria-invalid", "true", timeout=TIMEOUT)
        described = await pseudonym.get_attribute("aria-describedby")
        assert described
        error_ids = described.split()
        texts = [await page.locator(f"#{i}").inner_text() for i in error_ids]
        assert any("déjà utilisé" in t for t in texts), texts
        await expect(page.get_by_test_id("entry-age")).to_have_attribute("aria-invalid", "true")
        await expect(pseudonym).to_be_focused()
        # Every field has a label.
        for testid in ("entry-pseudonym", "entry-age", "entry-postal", "entry-accept"):
            field = page.get_by_test_id(testid)
            label = await field.evaluate("el => el.labels && el.labels.length")
            assert label, f"{testid} has no label"
        # English on demand.
        await page.get_by_test_id("entry-lang-en").click()
        await expect(page.locator("html")).to_have_attribute("lang", "en")
        await page.get_by_test_id("entry-submit").click()
        await expect(page.get_by_text("Causette is for people aged 18 and over.")).to_be_visible(
            timeout=TIMEOUT
        )
        await page.screenshot(path=str(SCREENSHOTS / "entry-errors-en.png"))
        assert taken.me["name"] == "Camille"
    finally:
        await ctx.close()
    assert problems.items == []
