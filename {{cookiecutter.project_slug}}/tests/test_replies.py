"""Replies: recorded before and after sending, retried without duplicates, dry run."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.botkit import Bot, Context, React
from {{ cookiecutter.package_name }}.config import Settings
from {{ cookiecutter.package_name }}.events import Space, Text
from {{ cookiecutter.package_name }}.handling import choose_sender
from {{ cookiecutter.package_name }}.inbox.sqlite_runner import BotThreads
from {{ cookiecutter.package_name }}.inbox.sqlite_store import SQLiteInbox
from {{ cookiecutter.package_name }}.samples import encode, text_delivery
from {{ cookiecutter.package_name }}.sending import DryRunSender, warm_up


class FlakySender:
    """Confirms every reply except those told to fail (by text), a given number of times."""

    mode = "test"

    def __init__(self, failures: dict[str, int]) -> None:
        self.failures = dict(failures)
        self.sent: list[str] = []
        self.keys: list[str] = []

    def send(self, space: Space, content: dict, key: str) -> dict:
        self.keys.append(key)
        text = content.get("text", "")
        if self.failures.get(text, 0) > 0:
            self.failures[text] -= 1
            raise ConnectionError("bridge exited")
        self.sent.append(text)
        return {"mode": self.mode, "message_id": f"sent-{len(self.sent)}"}

    def close(self) -> None:
        pass


@pytest.fixture
def inbox(tmp_path: Path) -> SQLiteInbox:
    return SQLiteInbox(tmp_path / "inbox.sqlite3")


def three_replies() -> tuple[Bot, list[str]]:
    bot, runs = Bot(), []

    @bot.on(Text)
    def handler(ctx: Context, content: Text) -> list[str]:
        runs.append(ctx.message.id)
        return ["first", "second", "third"]

    return bot, runs


def accept(inbox: SQLiteInbox, message_id: str = "m-1") -> None:
    inbox.accept(message_id, encode(text_delivery("hi", message_id=message_id)).decode())


def run_due(worker: BotThreads, inbox: SQLiteInbox) -> None:
    inbox._run("UPDATE inbox SET available_at = 0 WHERE state = 'pending'")
    worker.process_one()


def test_a_failed_reply_is_retried_alone(inbox: SQLiteInbox) -> None:
    bot, runs = three_replies()
    sender = FlakySender({"second": 2})
    worker = BotThreads(inbox, bot, sender, max_attempts=5)
    accept(inbox)
    for _ in range(3):
        run_due(worker, inbox)
    assert inbox.status("m-1").state == "done"
    assert runs == ["m-1"]  # the bot ran once: its replies were stored before sending
    assert sender.sent == ["first", "second", "third"]  # each confirmed reply sent once
    assert sender.keys == ["m-1#0", "m-1#1", "m-1#1", "m-1#1", "m-1#2"]  # same key per reply
    replies = inbox.status("m-1").outcome["replies"]
    assert [r["receipt"]["message_id"] for r in replies] == ["sent-1", "sent-2", "sent-3"]


def test_a_reply_that_keeps_failing_is_parked_with_its_space(
    inbox: SQLiteInbox, caplog: pytest.LogCaptureFixture
) -> None:
    bot, runs = three_replies()
    sender = FlakySender({"second": 99})
    worker = BotThreads(inbox, bot, sender, max_attempts=3)
    accept(inbox)
    for _ in range(3):
        run_due(worker, inbox)
    status = inbox.status("m-1")
    assert (status.state, status.attempts) == ("failed", 3)
    reason = 'reply 1 to space_id="any;-;+15550100" not sent: bridge exited'
    assert status.outcome == {"error": reason}
    assert f'parked message_id="m-1" attempt=3 error={json.dumps(reason)}' in caplog.text
    assert "Traceback" not in caplog.text  # the reason says it all
    assert sender.sent == ["first"] and runs == ["m-1"]


def test_a_worker_that_lost_its_lease_stops(inbox: SQLiteInbox) -> None:
    bot, _ = three_replies()
    sender = FlakySender({})
    worker = BotThreads(inbox, bot, sender, lease_seconds=60)
    accept(inbox)
    original = inbox.save_progress
    calls = []

    def steal_after_first_reply(claim, replies, lease_seconds, changes=None):
        calls.append(1)
        if len(calls) == 2:  # another worker took over after our first reply
            inbox._run("UPDATE inbox SET claim_token = 'someone-else'")
        return original(claim, replies, lease_seconds, changes)

    inbox.save_progress = steal_after_first_reply
    worker.process_one()
    assert sender.sent == ["first"]  # stopped instead of sending the rest
    assert inbox.status("m-1").state == "working"  # left to the new owner


def test_progress_renews_the_lease(inbox: SQLiteInbox) -> None:
    accept(inbox)
    claim = inbox.claim(lease_seconds=1)
    assert inbox.save_progress(claim, [], lease_seconds=600)
    assert inbox.claim(lease_seconds=1) is None  # still ours well past the first lease


def test_dry_run_logs_each_reply(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    space = Space(id="any;-;+15550100", platform="iMessage")
    sender = DryRunSender()
    assert sender.send(space, {"type": "text", "text": "héllo"}, key="m#0") == {"mode": "dry-run"}
    sender.send(space, {"type": "reaction", "emoji": "❤️", "target": "m"}, key="m#1")
    assert (
        'reply dry-run space_id="any;-;+15550100" platform="iMessage" text="héllo"' in caplog.text
    )
    assert 'emoji="❤️" target="m"' in caplog.text


class SlowToStart(DryRunSender):
    def __init__(self, fails: bool = False) -> None:
        self.fails, self.ready = fails, threading.Event()

    def warm_up(self) -> None:
        time.sleep(0.3)
        if self.fails:
            raise RuntimeError("node: not found")
        self.ready.set()


def test_warm_up_waits_for_the_sender_to_be_ready() -> None:
    sender = SlowToStart()
    warm_up(sender, wait=10)
    assert sender.ready.is_set()


def test_warm_up_waits_no_longer_than_told_and_the_sender_goes_on_starting() -> None:
    sender = SlowToStart()
    began = time.monotonic()
    warm_up(sender, wait=0.01)
    assert time.monotonic() - began < 0.25 and not sender.ready.is_set()
    assert sender.ready.wait(10)  # ready in the background, for the first message


def test_a_sender_that_cannot_start_is_a_warning_not_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    warm_up(SlowToStart(fails=True), wait=10)
    [record] = [r for r in caplog.records if r.getMessage().startswith("replies not ready")]
    assert record.levelno == logging.WARNING and record.error == "node: not found"


def test_without_a_bridge_replies_are_logged_and_the_log_says_why() -> None:
    settings = Settings(signing_secrets=("s",), bridge_dir=Path("/nonexistent"))
    sender, why = choose_sender(settings)
    assert isinstance(sender, DryRunSender)
    assert why == "no reply bridge in this project (/nonexistent/bridge.mjs)"


def test_react_reaches_the_sender_as_a_reaction(inbox: SQLiteInbox) -> None:
    bot = Bot()
    bot.on(Text)(lambda ctx, content: React("👍"))
    sender = FlakySender({})
    worker = BotThreads(inbox, bot, sender)
    accept(inbox)
    worker.process_one()
    (reply,) = inbox.status("m-1").outcome["replies"]
    assert reply["content"] == {"type": "reaction", "emoji": "👍", "target": "m-1"}
