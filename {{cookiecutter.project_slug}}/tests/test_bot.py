"""Your bot's behaviour: add a test here for each handler you write.

`make test-bot` runs this file alone. Each test runs twice (the `chat` fixture):
the handler called directly, which takes milliseconds, then the whole path in this
process: a signed request to the webhook, the inbox, the bot threads and the sender.
"""

from __future__ import annotations

import pytest

from {{ cookiecutter.package_name }}.bot import bot
from {{ cookiecutter.package_name }}.botkit import React
from {{ cookiecutter.package_name }}.testing import Conversation


@pytest.fixture(params=["direct", "real"])
def chat(request: pytest.FixtureRequest) -> Conversation:
    return Conversation(bot, real=request.param == "real")


def test_remember_asks_then_keeps_the_answer(chat: Conversation) -> None:
    assert chat.send("/recall") == ["Nothing yet: try /remember."]
    assert chat.send("/remember") == ["What should I remember?"]
    assert chat.send("buy milk") == ["Got it: “buy milk”. /recall shows it."]
    assert chat.send("/recall") == ["buy milk"]
    assert chat.send("and eggs") == ["You said: and eggs"]  # the question was answered


def test_each_conversation_remembers_its_own(chat: Conversation) -> None:
    yours = chat.another(sender="+15550199")
    chat.send("/remember")
    chat.send("mine")
    assert yours.send("/recall") == ["Nothing yet: try /remember."]


def test_greets(chat: Conversation) -> None:
    assert chat.send("well hello there") == ["Hello! Try /remember."]


def test_echoes_other_texts(chat: Conversation) -> None:
    assert chat.send("what time is it?") == ["You said: what time is it?"]


def test_thanks_for_attachments(chat: Conversation) -> None:
    photo = {"type": "attachment", "id": "A1", "name": "IMG.HEIC", "mimeType": "image/heic"}
    assert chat.send(photo) == [React("❤️"), "Thanks for the image/heic!"]


def test_stays_quiet_on_what_it_does_not_handle(chat: Conversation) -> None:
    assert chat.send({"type": "reaction", "emoji": "👍"}) == []
    assert chat.send({"type": "future-thing"}) == []
