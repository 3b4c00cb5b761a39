"""Sample deliveries of every kind parse as the content Spectrum's would."""

from __future__ import annotations

import pytest

from {{ cookiecutter.package_name }}.events import (
    Album,
    Attachment,
    ChatKind,
    Contact,
    Reaction,
    RichLink,
    Text,
    ThreadReply,
    Unknown,
    Voice,
    parse_event,
)
from {{ cookiecutter.package_name }}.samples import KINDS, content, delivery

EXPECTED = {
    "text": Text,
    "attachment": Attachment,
    "voice": Voice,
    "contact": Contact,
    "richlink": RichLink,
    "reaction": Reaction,
    "reply": ThreadReply,
    "album": Album,
    "unknown": Unknown,
}


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_parses_as_its_content(kind: str) -> None:
    event = parse_event(delivery(content(kind, "hello", target="m-0"), message_id="m-1"))
    assert event.problem is None
    assert type(event.message.content) is EXPECTED[kind]


def test_the_details_each_kind_carries(tmp_path) -> None:
    photo = tmp_path / "cat.png"
    photo.write_bytes(b"x" * 10)
    file = parse_event(delivery(content("attachment", file=str(photo)))).message.content
    assert (file.name, file.mime_type, file.size) == ("cat.png", "image/png", 10)
    reaction = parse_event(delivery(content("reaction", "hi", target="m-0", emoji="👍")))
    assert reaction.message.content.emoji == "👍"
    assert reaction.message.content.target.id == "m-0"
    reply = parse_event(delivery(content("reply", "sure", target="m-0"))).message.content
    assert (reply.content.text, reply.target.id) == ("sure", "m-0")
    album = parse_event(delivery(content("album"), message_id="m-9")).message.content
    assert [item.id for item in album.items] == ["p:0/m-9", "p:1/m-9"]
    link = parse_event(delivery(content("richlink", "https://x.example"))).message.content
    assert link.url == "https://x.example"


def test_group_chats_and_other_senders_and_platforms() -> None:
    message = parse_event(
        delivery(content("text", "hi"), chat="group", sender_id="+15550199", platform="Telegram")
    ).message
    assert message.space.kind is ChatKind.GROUP
    assert (message.sender.id, message.platform) == ("+15550199", "Telegram")


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown kind 'gif': choose one of text, attachment"):
        content("gif")
