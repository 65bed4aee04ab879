"""Moderation in real browsers: a visitor reports a message, a moderator sees the case appear
live and bans the author, whose page shows the statement of reasons; the author appeals, another
moderator grants the appeal, and the person can enter again."""

from __future__ import annotations

import re

import pyotp
from playwright.async_api import Browser, Page, expect

from causette.core.cases import Role
from causette.web.keys import ACCOUNTS, NODE
from tests.conftest import RunningServer
from tests.e2e.conftest import DESKTOP, PHONE, SCREENSHOTS, PageProblems, new_page

TIMEOUT = 10_000
PASSWORD = "une phrase de passe solide"
THREAT = "Je sais où tu habites, je passe ce soir."


async def log_in(page: Page, url: str, login: str, secret: str) -> None:
    await page.goto(url + "/mod")
    await page.get_by_test_id("mod-login").fill(login)
    await page.get_by_test_id("mod-password").fill(PASSWORD)
    await page.get_by_test_id("mod-code").fill(pyotp.TOTP(secret).now())
    await page.get_by_test_id("mod-login-submit").click()
    await expect(page.get_by_test_id("mod-live")).to_have_attribute(
        "data-state", "live", timeout=TIMEOUT
    )


async def enter(page: Page, url: str, pseudonym: str, gender: str, age: int, postal: str) -> None:
    await page.goto(url)
    await page.get_by_test_id("entry-pseudonym").fill(pseudonym)
    await page.get_by_test_id(f"entry-gender-{gender}").check()
    await page.get_by_test_id("entry-age").fill(str(age))
    await page.get_by_test_id("entry-postal").fill(postal)
    await expect(page.get_by_test_id("entry-commune-single")).not_to_be_empty(timeout=TIMEOUT)
    await page.get_by_test_id("entry-accept").check()
    await page.get_by_test_id("entry-submit").click()
    await expect(page.get_by_test_id("conn-state")).to_have_attribute(
        "data-state", "connected", timeout=TIMEOUT
    )


async def join_general(page: Page) -> None:
    await page.get_by_test_id("room-general").click()
    await expect(page.get_by_test_id("conv-title")).to_have_text(
        re.compile("Général"), timeout=TIMEOUT
    )


async def test_a_report_is_handled_live_and_an_appeal_lifts_the_ban(
    server: RunningServer, browser: Browser, problems: PageProblems
) -> None:
    accounts = server.app[ACCOUNTS]
    camille = await accounts.add("camille", PASSWORD, Role.MODERATOR, by="test")
    dominique = await accounts.add("dominique", PASSWORD, Role.MODERATOR, by="test")
    ctx_mod, mod = await new_page(browser, problems)
    ctx_author, author = await new_page(browser, problems)
    ctx_reporter, reporter = await new_page(browser, problems)
    ctx_mod2, mod2 = await new_page(browser, problems)
    try:
        # The moderator logs in with password + TOTP; the queue is empty and live.
        await log_in(mod, server.url, "camille", camille.secret)
        await expect(mod.get_by_test_id("mod-queue-empty")).to_be_visible()

        # Two visitors in #general; one threatens, the other reports it from the page.
        await enter(author, server.url, "Bastien", "m", 28, "69001")
        await enter(reporter, server.url, "Nadia", "f", 31, "75011")
        for page in (author, reporter):
            await join_general(page)
        await author.get_by_test_id("composer").fill(THREAT)
        await author.get_by_test_id("composer").press("Enter")
        line = reporter.get_by_test_id("msg").filter(has_text=THREAT)
        await expect(line).to_be_visible(timeout=TIMEOUT)
        await line.hover()
        await line.get_by_test_id("report-button").click()
        dialog = reporter.get_by_test_id("report-dialog")
        await expect(dialog).to_be_visible()
        await dialog.get_by_test_id("report-category-threat").check()
        await dialog.get_by_test_id("report-good-faith").check()
        await dialog.get_by_test_id("report-submit").click()
        case_code = reporter.get_by_test_id("report-case-code")
        await expect(case_code).to_have_text(re.compile(r"C-[0-9A-Z]{8}"), timeout=TIMEOUT)
        match = re.search(r"C-[0-9A-Z]{8}", await case_code.inner_text())
        assert match is not None
        case = match.group(0)

        # The case appears in the console at once, without reloading.
        row = mod.get_by_test_id("mod-case-row").filter(has_text="Bastien")
        await expect(row).to_be_visible(timeout=1_000)
        await expect(row).to_contain_text("Menace")
        await expect(row.get_by_test_id("mod-severity")).to_have_attribute("data-severity", "1")
        await row.click()
        view = mod.get_by_test_id("mod-case")
        await expect(view).to_contain_text(case, timeout=TIMEOUT)
        reported = mod.get_by_test_id("mod-evidence").get_by_test_id("mod-evidence-reported")
        await expect(reported).to_contain_text(THREAT)
        await expect(view.get_by_test_id("mod-report")).to_contain_text("Nadia")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await mod.get_by_test_id("mod-toast").evaluate("el => { el.hidden = true; }")
        await mod.screenshot(path=str(SCREENSHOTS / "moderation-console.png"))

        # The moderator bans the author, for good, with the facts the person will read.
        await mod.get_by_test_id("mod-action").select_option("ban")
        await expect(mod.get_by_test_id("mod-minutes")).to_be_visible()
        await mod.get_by_test_id("mod-minutes").select_option("permanent")
        await mod.get_by_test_id("mod-facts").fill("Trop court")
        await mod.get_by_test_id("mod-facts").fill(
            "Dans le salon Général, vous avez menacé une personne de venir chez elle ce soir."
        )
        await mod.get_by_test_id("mod-decide").click()
        await expect(mod.get_by_test_id("mod-case-row")).to_have_count(0, timeout=TIMEOUT)
        await expect(mod.get_by_test_id("mod-queue-empty")).to_be_visible()

        # The author's page shows the statement of reasons, with the way to appeal.
        statement = author.get_by_test_id("decision-dialog")
        await expect(statement).to_be_visible(timeout=TIMEOUT)
        await expect(statement).to_contain_text("menacé une personne")
        await expect(statement.get_by_test_id("appeal-open")).to_be_visible()
        await statement.evaluate("el => el.scrollTo(0, 0)")
        await author.screenshot(path=str(SCREENSHOTS / "statement-of-reasons.png"))
        await statement.get_by_test_id("appeal-open").click()
        await statement.get_by_test_id("appeal-text").fill(
            "C'était une phrase sortie de son contexte, je ne connais pas cette personne."
        )
        await statement.get_by_test_id("appeal-submit").click()
        await expect(statement.get_by_test_id("appeal-status")).to_have_attribute(
            "data-status", "pending", timeout=TIMEOUT
        )

        # The appeal reaches the console live; its author cannot decide it.
        await expect(mod.get_by_test_id("mod-appeals-count")).to_have_text("1", timeout=TIMEOUT)
        await mod.get_by_test_id("mod-appeals-tab").click()
        appeal = mod.get_by_test_id("mod-appeal-row")
        await expect(appeal).to_contain_text("sortie de son contexte")
        await expect(appeal.get_by_test_id("mod-appeal-grant")).to_be_disabled()
        await expect(appeal.get_by_test_id("mod-appeal-mine")).to_be_visible()

        # Another moderator grants it.
        await log_in(mod2, server.url, "dominique", dominique.secret)
        await mod2.get_by_test_id("mod-appeals-tab").click()
        appeal2 = mod2.get_by_test_id("mod-appeal-row")
        await appeal2.get_by_test_id("mod-appeal-answer").fill(
            "Après relecture du contexte, l'exclusion est levée. Restez courtois."
        )
        await appeal2.get_by_test_id("mod-appeal-grant").click()
        await expect(mod2.get_by_test_id("mod-appeal-row")).to_have_count(0, timeout=TIMEOUT)
        await expect(mod.get_by_test_id("mod-appeal-row")).to_have_count(0, timeout=TIMEOUT)
        [decision] = await server.app[NODE].store.decisions_of_case(case)
        assert decision.lifted_at is not None

        # Lifted: the same browser (ban cookie and all) enters again.
        await enter(author, server.url, "Bastien", "m", 28, "69001")
    finally:
        for ctx in (ctx_mod, ctx_author, ctx_reporter, ctx_mod2):
            await ctx.close()
    assert problems.items == []


async def test_the_console_at_phone_width_by_keyboard(
    server: RunningServer, browser: Browser, problems: PageProblems
) -> None:
    """Login errors next to the fields, the queue and a case at 360 px, keyboard only, and
    English."""
    enrolment = await server.app[ACCOUNTS].add("camille", PASSWORD, Role.ADMIN, by="test")
    alice = await server.visitor("Alice")
    bruno = await server.visitor("Bruno")
    await alice.join("general")
    await bruno.join("general")
    ack = await alice.say("r:general", "Achète mes cryptos sur http://arnaque.example")
    await bruno.send(
        {
            "type": "report",
            "target": "message",
            "id": ack["id"],
            "category": "spam_scam",
            "explanation": "Une arnaque.",
            "good_faith": True,
        }
    )
    await bruno.expect("reported")
    ctx, page = await new_page(browser, problems, PHONE)
    try:
        await page.goto(server.url + "/mod")
        # Errors are said next to the fields at fault.
        await page.get_by_test_id("mod-login").fill("camille")
        await page.get_by_test_id("mod-code").fill("12")
        await page.get_by_test_id("mod-login-submit").click()
        await expect(page.locator("#f-password-error")).to_be_visible()
        await expect(page.locator("#f-code-error")).to_be_visible()
        await expect(page.get_by_test_id("mod-password")).to_be_focused()
        # A wrong code: refused as a whole, without saying which part was wrong.
        await page.get_by_test_id("mod-password").fill(PASSWORD)
        wrong = "000000" if pyotp.TOTP(enrolment.secret).now() != "000000" else "111111"
        await page.get_by_test_id("mod-code").fill(wrong)
        await page.get_by_test_id("mod-login-submit").click()
        await expect(page.get_by_test_id("mod-login-error")).to_contain_text("incorrect")
        await expect(page.get_by_test_id("mod-code")).to_have_value("")

        # Keyboard only from here.
        await page.get_by_test_id("mod-password").focus()
        await page.keyboard.type(PASSWORD)
        await page.keyboard.press("Tab")
        await page.keyboard.type(pyotp.TOTP(enrolment.secret).now())
        await page.keyboard.press("Enter")
        row = page.get_by_test_id("mod-case-row")
        await expect(row).to_have_count(1, timeout=TIMEOUT)
        await expect(row).to_contain_text("Spam")
        await expect(page.get_by_test_id("mod-audit-tab")).to_be_visible()  # an admin
        await row.focus()
        await page.keyboard.press("Enter")
        await expect(page.get_by_test_id("mod-evidence")).to_contain_text("arnaque.example")
        assert await page.get_by_test_id("mod-evidence").locator("a").count() == 0
        await expect(page.locator("#case-title")).to_be_focused()
        width = await page.evaluate("document.scrollingElement.scrollWidth")
        assert width <= PHONE["width"], f"horizontal scroll at phone width ({width}px)"
        await page.screenshot(path=str(SCREENSHOTS / "moderation-console-phone.png"))

        # Facts too short: said next to the field, nothing decided.
        await page.get_by_test_id("mod-action").select_option("warn")
        await page.get_by_test_id("mod-facts").fill("court")
        await page.get_by_test_id("mod-decide").click()
        await expect(page.get_by_test_id("mod-facts")).to_have_attribute("aria-invalid", "true")
        await expect(page.get_by_test_id("mod-facts")).to_be_focused()

        # In English.
        await page.get_by_test_id("mod-lang-en").click()
        await expect(page.get_by_test_id("mod-decide")).to_have_text("Apply the decision")
        await expect(page.get_by_test_id("mod-facts")).to_have_value("court")
        # Dismissed: the case leaves the queue.
        await page.get_by_test_id("mod-dismiss-reason").fill("Not a scam after all.")
        await page.get_by_test_id("mod-dismiss").click()
        await expect(page.get_by_test_id("mod-queue-empty")).to_be_visible(timeout=TIMEOUT)
        await expect(page.get_by_test_id("mod-case-row")).to_have_count(0)
        outcome = await bruno.expect("case_outcome")
        assert outcome["outcome"] == "dismissed"

        # The audit log, then logging out.
        await page.get_by_test_id("mod-audit-tab").click()
        await expect(page.get_by_test_id("mod-audit-row").first).to_contain_text("case.dismiss")
        await page.get_by_test_id("mod-logout").click()
        await expect(page.get_by_test_id("mod-login")).to_be_visible()
        await expect(page.get_by_test_id("mod-live")).to_have_attribute("data-state", "offline")
    finally:
        await ctx.close()
    assert problems.items == []


async def test_the_console_desktop_layout_has_no_overflow(
    server: RunningServer, browser: Browser, problems: PageProblems
) -> None:
    ctx, page = await new_page(browser, problems, DESKTOP)
    try:
        await page.goto(server.url + "/mod")
        await expect(page.get_by_test_id("mod-login")).to_be_focused()
        width = await page.evaluate("document.scrollingElement.scrollWidth")
        assert width <= DESKTOP["width"]
    finally:
        await ctx.close()
    assert problems.items == []
