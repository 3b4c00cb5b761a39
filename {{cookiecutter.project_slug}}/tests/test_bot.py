"""Your bot's behaviour. Add a test here for each handler you write."""

from __future__ import annotations

import pytest

from {{ cookiecutter.package_name }}.bot import bot
from {{ cookiecutter.package_name }}.botkit import Bot, React
from {{ cookiecutter.package_name }}.events import Attachment, Text, parse_event
from {{ cookiecutter.package_name }}.samples import delivery, text_delivery


def message(content: dict):
    return parse_event(delivery(content)).message


def text(value: str) -> dict[str, str]:
    return {"type": "text", "text": value}


def test_echoes_text() -> None:
    assert bot.handle(parse_event(text_delivery("hello")).message) == [text("You said: hello")]


def test_thanks_for_attachments() -> None:
    photo = {"type": "attachment", "id": "A1", "name": "IMG.HEIC", "mimeType": "image/heic"}
    incoming = message(photo)
    assert bot.handle(incoming) == [
        {"type": "reaction", "emoji": "❤️", "target": incoming.id},
        text("Thanks for the image/heic!"),
    ]


def test_stays_quiet_on_what_it_does_not_handle() -> None:
    assert bot.handle(message({"type": "reaction", "emoji": "👍"})) == []
    assert bot.handle(message({"type": "future-thing"})) == []


def test_dispatch_rules() -> None:
    b = Bot()
    b.on(Text)(lambda m, c: ["one", "", React("👍"), "two"])
    b.otherwise(lambda m, c: None)
    incoming = message({"type": "text", "text": "x"})
    assert b.handle(incoming) == [
        text("one"),
        {"type": "reaction", "emoji": "👍", "target": incoming.id},
        text("two"),
    ]
    assert b.handle(message({"type": "attachment"})) == []
    with pytest.raises(ValueError, match="already registered"):
        b.on(Text)(lambda m, c: None)
    b.on(Attachment)(lambda m, c: [1])
    with pytest.raises(TypeError, match="returned int: return a str, a React"):
        b.handle(message({"type": "attachment"}))
