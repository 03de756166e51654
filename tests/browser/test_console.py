"""The operator console in a real headless Chromium, against the real ``durabot run`` process and its sandbox.

One scenario, stage by stage, each leaving a screenshot in ``test-artifacts/browser/`` at the repository root:
the login is required and guarded (redirects, a wrong password, missing CSRF tokens), a case made through the
sandbox is reviewed and exported, the funnel chart is drawn, a dead letter is resent, and logging out ends it.
"""

from __future__ import annotations

import asyncio
import csv
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from durabot.flows.eb1a_intake import EB1A_INTAKE
from durabot.service import SANDBOX_TOKEN
from tests.browser.conftest import start_durabot
from tests.conftest import free_port
from tests.e2e.conftest import Process, SandboxClient, base_env
from tests.integration.intake_answers import BASIC

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
OPERATOR, PASSWORD = "alice", "correct horse battery"
SESSION_COOKIE = "durabot_session"
GUARD_SECONDS = 60.0
"""A hang guard, not a timing."""
PLAYWRIGHT_EXPECT_DEFAULT_MS = 5_000
"""playwright's own default for ``expect``, put back after the test (``expect.set_options`` is global)."""
FUNNEL_GUARD_SECONDS = 40.0
"""The service adds the funnel's counts to the database every 10 s: a few flushes' worth."""

CLIENT_CHAT, MACHINE_CHAT, CANCELLING_CHAT, BLOCKED_CHAT = 8101, 8201, 8202, 8301
MACHINE = ["/addmachine", "Press 12", "Haas", "VF-2", "SN-77", "Bay 4", "greased monthly"]
CANCELLED = ["/addmachine", "Press 13", "/cancel"]
CLIENT = dict(BASIC)["full_name"]
EMAIL = dict(BASIC)["email"]

T = TypeVar("T")


@dataclass(frozen=True)
class Console:
    """The running service: the console's address and the sandbox's test API."""

    url: str
    sandbox: SandboxClient
    process: Process


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    database = tmp_path / "console.sqlite3"
    env = base_env(DATABASE_URL=f"sqlite:///{database}")
    added = subprocess.run(
        [sys.executable, "-m", "durabot", "admin", "add-user", OPERATOR, "--password", PASSWORD],
        env=env, capture_output=True, text=True, timeout=GUARD_SECONDS, check=False,
    )
    assert added.returncode == 0, f"admin add-user failed ({added.returncode}):\n{added.stdout}\n{added.stderr}"

    port = free_port()
    process, chat_page = start_durabot(
        database, free_port(), ADMIN_ENABLED="true", ADMIN_LISTEN_HOST="127.0.0.1", ADMIN_LISTEN_PORT=str(port)
    )
    try:
        process.wait_for("console.listening")
        [listening] = process.events("console.listening")
        assert listening["console_port"] == port, listening
        sandbox = SandboxClient(chat_page.rstrip("/"), SANDBOX_TOKEN)
        yield Console(f"http://127.0.0.1:{port}", sandbox, process)
        sandbox.http.close()
    finally:
        process.stop()
        print("--- durabot run, last lines ---\n" + process.output())


async def until(check: Callable[[], Awaitable[T | None]], what: str, seconds: float = GUARD_SECONDS) -> T:
    """Poll ``check`` until it returns something truthy (a hang guard, not a timing assertion)."""
    deadline = time.monotonic() + seconds
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.2)


async def screenshot(page: Page, name: str) -> None:
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def session_cookies(context: BrowserContext) -> list[str]:
    return [cookie["value"] for cookie in await context.cookies() if cookie["name"] == SESSION_COOKIE]


async def say_and_wait(sandbox: SandboxClient, chat: int, text: str, expected: str | None = None) -> list[str]:
    """Send ``text`` as the chat's user and wait for the bot's next message (containing ``expected``, if given)."""
    before = len(sandbox.bot_texts(chat))
    sandbox.say(chat, text)

    async def answered() -> list[str] | None:
        fresh = sandbox.bot_texts(chat)[before:]
        if not fresh or (expected is not None and not any(expected in (t or "") for t in fresh)):
            return None
        return fresh

    return await until(answered, f"the bot's answer to {text!r} in chat {chat}" + (f" with {expected!r}" if expected else ""))


async def test_the_operator_console_in_a_browser(browser: Browser, console: Console) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = await browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(GUARD_SECONDS * 1000)
    expect.set_options(timeout=GUARD_SECONDS * 1000)
    page = await context.new_page()
    try:
        await login_is_required_and_guarded(page, context, console)
        case_id = await a_sandbox_case_is_reviewed(page, context, console)
        await the_cases_are_exported_as_csv(page, case_id)
        await the_funnel_chart_is_drawn(page, console)
        await a_dead_letter_is_resent(page, console)
        await logging_out_ends_the_session(page, context, console)
    finally:
        expect.set_options(timeout=PLAYWRIGHT_EXPECT_DEFAULT_MS)
        await context.close()


async def login_is_required_and_guarded(page: Page, context: BrowserContext, console: Console) -> None:
    """Stage 1: every page sends a stranger to the login; a wrong password and a login without its CSRF token fail."""
    for path in ("/conversations", "/health", "/equipment", "/cases"):
        response = await page.goto(console.url + path)
        assert response is not None and response.ok, path
        redirected = response.request.redirected_from
        assert redirected is not None and redirected.url == console.url + path, f"{path} was not redirected"
        first = await redirected.response()
        assert first is not None and first.status == 302, f"{path}: {first.status if first else None}"
        assert page.url == f"{console.url}/login?next={path}", page.url
        await expect(page.locator("form.login")).to_be_visible()
        await expect(page.locator("header nav")).to_have_count(0)
    await screenshot(page, "01-cases-without-login-lands-on-login")

    await page.fill("#name", OPERATOR)
    await page.fill("#password", "not the password")
    async with page.expect_response(lambda r: r.url == f"{console.url}/login" and r.request.method == "POST") as posted:
        await page.click("form.login button[type=submit]")
    assert (await posted.value).status == 401
    await expect(page.locator("p.error[role=alert]")).to_have_text("That name and password do not match.")
    await expect(page.locator("#name")).to_have_value(OPERATOR)
    assert await session_cookies(context) == [], "a wrong password gave a session cookie"
    await screenshot(page, "02-wrong-password-refused")

    # A login POST without the login form's CSRF field (the login cookie is there: the page was loaded).
    assert any(cookie["name"] == "durabot_login" for cookie in await context.cookies()), "no login CSRF cookie"
    refused = await page.request.post(
        f"{console.url}/login", form={"name": OPERATOR, "password": PASSWORD, "next": "/cases"}, max_redirects=0
    )
    assert refused.status == 403, f"login without its CSRF token: {refused.status} {await refused.text()}"
    assert "login form is out of date" in await refused.text()
    assert await session_cookies(context) == [], "a login without its CSRF token gave a session cookie"


async def a_sandbox_case_is_reviewed(page: Page, context: BrowserContext, console: Console) -> str:
    """Stage 2: a client answers the intake's first block through the sandbox; alice finds, reads and reviews the case."""
    sandbox = console.sandbox
    await say_and_wait(sandbox, CLIENT_CHAT, "/intake_start", "Question 1 of 8")
    for number, (_key, text) in enumerate(BASIC, start=1):
        await say_and_wait(sandbox, CLIENT_CHAT, text, f"Question {number + 1} of 8" if number < len(BASIC) else "part 2 of 6")

    await page.goto(console.url + "/cases")
    assert page.url.startswith(console.url + "/login"), page.url
    await page.fill("#name", OPERATOR)
    await page.fill("#password", PASSWORD)
    await page.click("form.login button[type=submit]")
    await expect(page).to_have_url(console.url + "/cases")
    assert len(await session_cookies(context)) == 1, "no session cookie after logging in"
    await expect(page.locator("header")).to_contain_text(OPERATOR)
    row = page.locator("tbody tr", has_text=CLIENT)
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text(EMAIL)
    await expect(row.locator("td").nth(1)).to_have_text("draft")
    await expect(row.locator("td").nth(2)).to_have_text("new")
    await screenshot(page, "03-cases-list-with-the-client")

    link = row.locator("a", has_text=CLIENT)
    href = await link.get_attribute("href")
    assert href is not None and href.startswith("/cases/"), href
    case_id = href.removeprefix("/cases/")

    # The review form's POST without its csrf field, with a live session, is refused and changes nothing.
    refused = await page.request.post(f"{console.url}/cases/{case_id}/review", form={"status": "accepted"}, max_redirects=0)
    body = await refused.text()
    assert refused.status == 403, f"review without its CSRF token: {refused.status} {body}"
    assert "did not come from the console" in body, f"refused for another reason than the CSRF token: {body}"

    await link.click()
    await expect(page).to_have_url(console.url + href)
    await expect(page.locator("h1")).to_contain_text(CLIENT)
    await expect(page.locator("#review")).to_have_value("new")  # the refused POST changed nothing
    block = page.locator("h2", has_text="Basic information")
    await expect(block).to_have_count(1)
    answers = page.locator("h2:has-text('Basic information') + table tr")
    await expect(answers).to_have_count(len(BASIC))
    for n, (key, text) in enumerate(BASIC):
        step = EB1A_INTAKE.step(key)
        await expect(answers.nth(n).locator("th")).to_have_text(step.label)
        await expect(answers.nth(n).locator("td")).to_have_text(str(step.parse(text)))
    await expect(page.locator("h2", has_text="Field of endeavour")).to_have_count(0)  # nothing answered there yet
    await screenshot(page, "04-case-answers-by-block")

    await page.select_option("#review", "needs_info")
    async with page.expect_navigation():
        await page.click("button:has-text('Save review status')")
    await expect(page).to_have_url(console.url + href)
    await expect(page.locator("#review")).to_have_value("needs_info")
    await expect(page.locator("#review option:checked")).to_have_text("needs info")
    await expect(page.locator("form[action$='/review']")).to_contain_text(f"set by {OPERATOR}")
    await screenshot(page, "05-review-set-to-needs-info")

    await page.click("a:has-text('← Cases')")
    await expect(page).to_have_url(console.url + "/cases")
    await page.select_option("select[name=status]", "needs_info")
    await page.click("form.filters button[type=submit]")
    await expect(page).to_have_url(console.url + "/cases?status=needs_info&q=")
    filtered = page.locator("tbody tr", has_text=CLIENT)
    await expect(filtered).to_have_count(1)
    await expect(filtered.locator("td").nth(2)).to_have_text("needs info")
    await screenshot(page, "06-cases-filtered-by-needs-info")

    await page.select_option("select[name=status]", "accepted")  # and another status does not list it
    await page.click("form.filters button[type=submit]")
    await expect(page).to_have_url(console.url + "/cases?status=accepted&q=")
    await expect(page.locator("tbody tr", has_text=CLIENT)).to_have_count(0)
    await expect(page.locator("tbody")).to_contain_text("No case matches.")
    return case_id


async def the_cases_are_exported_as_csv(page: Page, case_id: str) -> None:
    """Stage 3: the CSV export downloads, with the client's row as reviewed."""
    async with page.expect_download() as downloading:
        await page.click("a:has-text('Export all as CSV')")
    download = await downloading.value
    assert download.suggested_filename == "cases.csv", download.suggested_filename
    assert await download.failure() is None
    await download.save_as(ARTIFACTS / "cases.csv")
    with (ARTIFACTS / "cases.csv").open(newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert [row["client"] for row in rows] == [CLIENT], rows
    [row] = rows
    assert (row["case_id"], row["email"], row["status"], row["review"]) == (case_id, EMAIL, "draft", "needs_info"), row
    assert 0 < int(row["percent_answered"]) < 100, row
    await screenshot(page, "07-cases-exported-as-csv")


async def the_funnel_chart_is_drawn(page: Page, console: Console) -> None:
    """Stage 4: one technician adds a machine, another cancels; /conversations draws add_machine's funnel."""
    sandbox = console.sandbox
    for text in MACHINE:
        replies = await say_and_wait(sandbox, MACHINE_CHAT, text)
    assert replies[-1].startswith("Saved “Press 12”"), replies
    for text in CANCELLED:
        replies = await say_and_wait(sandbox, CANCELLING_CHAT, text)
    assert replies[-1].startswith("Cancelled"), replies

    funnel = page.locator("section.funnel[data-flow='add_machine']")

    async def count(event: str) -> str:
        return (await funnel.locator(f"tr.funnel-row[data-event='{event}'] td").nth(1).inner_text()).strip()

    seen: list[tuple[str, ...]] = []

    async def flushed() -> bool:
        await page.goto(console.url + "/conversations")
        if not await funnel.locator("svg").count():
            seen.append(("no chart",))
            return False
        counts = (await count("started"), await count("completed"), await count("cancelled"))
        seen.append(counts)
        return counts == ("2", "1", "1")

    try:
        await until(flushed, "add_machine's funnel: started 2, completed 1, cancelled 1", FUNNEL_GUARD_SECONDS)
    finally:
        await screenshot(page, "08-conversations-funnel")
    assert seen[-1] == ("2", "1", "1"), f"funnel (started, completed, cancelled) seen: {seen}"

    chart = funnel.locator("svg[role=img]")
    await expect(chart).to_be_visible()
    await expect(chart).to_have_attribute("aria-label", "Funnel of add_machine over 7 days")
    box = await chart.bounding_box()
    assert box is not None and box["width"] > 0 and box["height"] > 0, box
    bars = chart.locator("rect")
    await expect(bars).to_have_count(await funnel.locator("tr.funnel-row").count())
    started = await bars.first.bounding_box()  # the longest bar: every other is drawn against it
    completed = await funnel.locator("svg g", has=page.locator("title", has_text="Completed")).locator("rect").bounding_box()
    expired = await funnel.locator("svg g", has=page.locator("title", has_text="Expired")).locator("rect").bounding_box()
    assert started is not None and started["width"] > 0 and started["height"] > 0, started
    assert completed is not None and 0 < completed["width"] < started["width"], (completed, started)
    assert expired is None or expired["width"] == 0, expired  # nothing expired: no bar to see
    await expect(funnel.locator("svg")).to_contain_text("Started")
    await chart.screenshot(path=str(ARTIFACTS / "08-conversations-funnel-chart.png"))


async def a_dead_letter_is_resent(page: Page, console: Console) -> None:
    """Stage 5: a chat that blocked the bot leaves a dead letter on /health; once unblocked, Resend delivers it."""
    sandbox = console.sandbox
    sandbox.fault(chat_id=BLOCKED_CHAT, blocked=True)
    sandbox.say(BLOCKED_CHAT, "/help")
    dead = page.locator("tr[id^='dead-']", has=page.locator("td:nth-child(2)", has_text=str(BLOCKED_CHAT)))

    async def listed() -> bool:
        await page.goto(console.url + "/health")
        return await dead.count() == 1

    await until(listed, f"a dead letter for chat {BLOCKED_CHAT} on /health")
    await expect(dead.locator("td").nth(2)).to_have_text("send_message")
    await expect(dead).to_contain_text("blocked by the user")
    assert sandbox.bot_texts(BLOCKED_CHAT) == [], "the blocked chat got a message"
    await expect(page.locator("#outbox")).to_contain_text("1 dead letter")
    await screenshot(page, "09-health-lists-the-dead-letter")

    sandbox.fault(chat_id=BLOCKED_CHAT, blocked=False)
    async with page.expect_navigation():
        await dead.locator("button:has-text('Resend')").click()
    await expect(page).to_have_url(console.url + "/health")

    async def delivered() -> list[str] | None:
        return sandbox.bot_texts(BLOCKED_CHAT) or None

    [text] = await until(delivered, f"the resent reply in chat {BLOCKED_CHAT}")
    assert "/addmachine" in text, text  # the help, listing the commands

    async def gone() -> bool:
        await page.goto(console.url + "/health")
        return await dead.count() == 0

    await until(gone, "the dead letter to leave /health")
    await expect(page.locator("#dead + p + table tbody")).to_contain_text("No dead letter.")
    await expect(page.locator("#outbox")).to_contain_text("0 dead letters")
    await screenshot(page, "10-health-after-resend")


async def logging_out_ends_the_session(page: Page, context: BrowserContext, console: Console) -> None:
    """Stage 6: after logging out, the pages send to the login again."""
    async with page.expect_navigation():
        await page.click("header button:has-text('Log out')")
    await expect(page).to_have_url(console.url + "/login")
    assert await session_cookies(context) == [], "the session cookie outlived the logout"
    await page.goto(console.url + "/cases")
    await expect(page).to_have_url(console.url + "/login?next=/cases")
    await expect(page.locator("form.login")).to_be_visible()
    await screenshot(page, "11-logged-out-cases-lands-on-login")
