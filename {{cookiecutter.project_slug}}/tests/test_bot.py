"""Your bot's behaviour: add a test here for each handler you write."""

from __future__ import annotations

from {{ cookiecutter.package_name }}.bot import bot
from {{ cookiecutter.package_name }}.botkit import React
from {{ cookiecutter.package_name }}.testing import Conversation


def test_remember_asks_then_keeps_the_answer() -> None:
    chat = Conversation(bot)
    assert chat.send("/recall") == ["Nothing yet: try /remember."]
    assert chat.send("/remember") == ["What should I remember?"]
    assert chat.send("buy milk") == ["Got it: “buy milk”. /recall shows it."]
    assert chat.send("/recall") == ["buy milk"]
    assert chat.send("and eggs") == ["You said: and eggs"]  # the question was answered


def test_each_conversation_remembers_its_own() -> None:
    mine, yours = Conversation(bot), Conversation(bot, sender="+15550199")
    mine.send("/remember")
    mine.send("mine")
    assert yours.send("/recall") == ["Nothing yet: try /remember."]


def test_greets() -> None:
    assert Conversation(bot).send("well hello there") == ["Hello! Try /remember."]


def test_echoes_other_texts() -> None:
    assert Conversation(bot).send("what time is it?") == ["You said: what time is it?"]


def test_thanks_for_attachments() -> None:
    photo = {"type": "attachment", "id": "A1", "name": "IMG.HEIC", "mimeType": "image/heic"}
    assert Conversation(bot).send(photo) == [React("❤️"), "Thanks for the image/heic!"]


def test_stays_quiet_on_what_it_does_not_handle() -> None:
    chat = Conversation(bot)
    assert chat.send({"type": "reaction", "emoji": "👍"}) == []
    assert chat.send({"type": "future-thing"}) == []
