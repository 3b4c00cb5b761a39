"""The playground page in a real browser: Debian's Chromium, driven by Playwright.

The default bake runs under gunicorn (replies logged: dry run) with its own
sample bot.py, and `flask spectrum playground` runs beside it, pointed at its
webhook. Headless Chromium types a message and sees the bot's reply, sends a
photo and sees the bot's ❤️ on that photo, redelivers and sees "duplicate",
and sends a badly signed message and sees it refused. The page must load
nothing from anywhere but the playground itself.

The screenshot goes to the test's tmp folder; with UPDATE_SCREENSHOTS=1 it also
replaces the one the generated README shows (`docs/playground.png`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Served, bake, free_port, port_open  # bench/harness.py

CHROMIUM = Path("/usr/bin/chromium")
TEMPLATE = Path(__file__).resolve().parent.parent
SCREENSHOT = TEMPLATE / "{{cookiecutter.project_slug}}" / "docs" / "playground.png"
TIMEOUT_MS = 60_000  # a slow, shared 2-core machine: every wait is generous

if not CHROMIUM.exists():
    pytest.skip(
        "no /usr/bin/chromium: apt-get install chromium (CI installs it)", allow_module_level=True
    )
playwright = pytest.importorskip(
    "playwright.sync_api", reason="Playwright is not installed: pip install -r requirements-dev.txt"
)
expect = playwright.expect


@pytest.fixture(scope="module")
def playground(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The baked app under gunicorn and the playground pointed at it: the page's URL."""
    work = tmp_path_factory.mktemp("playground")
    project = bake(work)
    served = Served(project, work)
    served.start()
    port = free_port()
    command = [sys.executable, "-m", "flask", "--app", "my_spectrum_bot", "spectrum"]
    command += ["playground", "--port", str(port)]
    command += ["--url", f"http://127.0.0.1:{served.port}/spectrum-webhook"]
    log = work / "playground.log"
    process = subprocess.Popen(
        command, cwd=project, env=served.env, stdout=log.open("w"), stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 60
        while not port_open(port):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"no playground after 60 s:\n{log.read_text()}"
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/"
    finally:
        process.terminate()
        process.wait(10)
        served.close()


@pytest.fixture
def page(playground: str) -> Iterator[object]:
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
            timeout=TIMEOUT_MS,
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(TIMEOUT_MS)
            expect.set_options(timeout=TIMEOUT_MS)
            elsewhere: list[str] = []
            page.on(
                "request",
                lambda request: (
                    None if request.url.startswith(playground) else elsewhere.append(request.url)
                ),
            )
            page.goto(playground)
            yield page
            assert elsewhere == [], "the page loaded something from elsewhere"
        finally:
            browser.close()


def test_chat_reply_reaction_duplicate_and_refusal(page, tmp_path: Path) -> None:
    expect(page.locator("#health")).to_have_text("app is up")

    # A text: the bot's reply appears in the chat, and the delivery in the panel.
    page.get_by_label("Message", exact=True).fill("ping from the browser")
    page.get_by_role("button", name="Send", exact=True).click()
    mine = page.locator(".bubble.user", has_text="ping from the browser")
    expect(mine).to_contain_text("accepted")
    expect(page.locator(".bubble.bot", has_text="You said: ping from the browser")).to_be_visible()
    expect(mine).to_contain_text("handled: 1 reply")
    first = page.locator(".delivery", has_text="ping from the browser")
    expect(first).to_contain_text("202 accepted")
    expect(first).to_contain_text("X-Spectrum-Signature: v0=")
    expect(first).to_contain_text('receipt: {"mode":"dry-run"}')  # the reply's, recorded

    # A photo: the bot's ❤️ lands on that photo, its text reply below.
    page.get_by_label("Kind", exact=True).select_option("attachment")
    page.locator("#file").set_input_files(
        {"name": "cat.heic", "mimeType": "image/heic", "buffer": b"\x00" * 2048}
    )
    page.get_by_role("button", name="Send", exact=True).click()
    photo = page.locator(".bubble.user", has_text="cat.heic")
    expect(photo).to_contain_text("image/heic, 2048 bytes")
    expect(page.locator(".bubble.bot", has_text="Thanks for the image/heic!")).to_be_visible()
    expect(photo.locator(".reaction.from-bot")).to_have_text("❤️")
    photo_id = photo.get_attribute("data-message-id")
    text_id = mine.get_attribute("data-message-id")
    expect(page.locator(f'.bubble[data-message-id="{text_id}"] .reaction')).to_have_count(0)
    assert photo_id and photo_id != text_id

    # The same delivery again, as Spectrum's retry: the app answers "duplicate".
    first.get_by_role("button", name="Redeliver", exact=True).click()
    again = page.locator(".delivery", has_text="redelivery").first
    expect(again).to_contain_text("200 duplicate")
    expect(again).to_contain_text("Not handled again")
    expect(mine).to_contain_text("redelivery: 200 duplicate")
    expect(page.locator(".bubble.bot", has_text="You said: ping from the browser")).to_have_count(1)

    # Signed with a wrong secret: refused, never stored, so the bot never sees it.
    page.get_by_label("Kind", exact=True).select_option("text")
    page.get_by_label("Message", exact=True).fill("forged message")
    page.get_by_role("button", name="Send badly signed").click()
    forged = page.locator(".bubble.user", has_text="forged message")
    expect(forged).to_contain_text("401 refused: signature does not match any configured secret")
    refused = page.locator(".delivery", has_text="forged message")
    expect(refused).to_contain_text("401 refused: signature does not match")
    expect(refused).to_contain_text("Not stored")
    expect(page.locator(".bubble.bot", has_text="forged")).to_have_count(0)

    # The photo's delivery, opened again: the bot's outcome names the photo as the target.
    page.locator(".delivery summary", has_text="#2 new message").click()
    opened = page.locator(".delivery", has_text="#2 new message")
    expect(opened).to_contain_text(f'"type":"reaction","emoji":"❤️","target":"{photo_id}"')
    expect(opened.locator(".outcome")).to_be_visible()

    page.screenshot(path=tmp_path / "playground.png", full_page=True)
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(tmp_path / "playground.png", SCREENSHOT)


def test_group_conversation_and_a_reply_to_a_message(page) -> None:
    page.get_by_role("button", name="Family").click()
    expect(page.locator("#chat-meta")).to_have_text("group · iMessage")
    page.locator("#sender").fill("+15550177")
    page.get_by_label("Message", exact=True).fill("hello group")
    page.get_by_role("button", name="Send", exact=True).click()
    greeting = page.locator(".bubble.bot", has_text="Hello! Try /remember.")
    expect(greeting).to_be_visible()
    expect(page.locator(".bubble.user", has_text="hello group")).to_contain_text("+15550177")
    body = page.locator(".delivery", has_text="hello group")
    expect(body).to_contain_text('"type": "group"')
    expect(body).to_contain_text('"id": "+15550177"')

    greeting.get_by_role("button", name="React 👍").click()
    expect(page.locator(".delivery").first).to_contain_text("reaction 👍")
    expect(page.locator(".delivery").first).to_contain_text("202 accepted")
    expect(greeting.locator(".reaction")).to_have_text("👍")

    greeting.get_by_role("button", name="Reply").click()
    page.get_by_label("Message", exact=True).fill("/remember")
    page.get_by_role("button", name="Send", exact=True).click()
    reply = page.locator(".bubble.user", has_text="/remember")
    expect(reply.locator("blockquote")).to_have_text("Hello! Try /remember.")
    expect(page.locator(".delivery").first).to_contain_text('"type": "reply"')  # newest first
