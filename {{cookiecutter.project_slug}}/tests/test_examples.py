"""The examples in examples/ work, through the app's real path."""

from __future__ import annotations

import time

from conftest import SECRET, WEBHOOK_PATH

# `import`, not `from`: it sorts first whatever the package is called.
import examples.reminders as reminders
from {{ cookiecutter.package_name }} import create_app
from {{ cookiecutter.package_name }}.config import Settings
from {{ cookiecutter.package_name }}.replies import Later
from {{ cookiecutter.package_name }}.runtime import runtime
from {{ cookiecutter.package_name }}.samples import encode, text_delivery
from {{ cookiecutter.package_name }}.testing import Conversation
from {{ cookiecutter.package_name }}.verify import signed_headers


def test_remind_answers_and_sets_a_reminder() -> None:
    chat = Conversation(reminders.bot)
    assert chat.send("/remind 10m stretch") == ["OK: in 10m, stretch", Later(600, "⏰ stretch")]
    assert chat.send("/remind soon") == ["Try: /remind 10m stretch"]


def test_a_reminder_survives_a_restart(settings: Settings) -> None:
    before = create_app(settings, bot=reminders.bot)
    body = encode(text_delivery("/remind 1s stretch", message_id="m-1"))
    headers = signed_headers(SECRET, int(time.time()), body)
    assert before.test_client().post(WEBHOOK_PATH, data=body, headers=headers).status_code == 202
    assert runtime(before).bot_threads.process_one()
    sent = runtime(before).inbox.status("m-1").outcome["replies"]
    assert [r["content"]["type"] for r in sent] == ["text", "later"]

    after = create_app(settings, bot=reminders.bot)  # a new process: the inbox is all it has
    assert not runtime(after).bot_threads.process_one()  # not yet
    time.sleep(1.1)
    assert runtime(after).bot_threads.process_one()
    reminder = runtime(after).inbox.status("later:m-1#1")
    assert reminder.state == "done"
    assert reminder.outcome["replies"][0]["content"] == {"type": "text", "text": "⏰ stretch"}
