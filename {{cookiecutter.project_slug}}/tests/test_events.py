"""Parsing deliveries: every known content type, novelties, and junk that must not crash."""

from __future__ import annotations

import json
from pathlib import Path

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
    same_platform,
)
from {{ cookiecutter.package_name }}.samples import delivery, text_delivery

VECTORS = json.loads((Path(__file__).parent / "vectors.json").read_text(encoding="utf-8"))


def test_text_delivery() -> None:
    event = parse_event(text_delivery("hey, what time is dinner?", message_id="spc-msg-1"))
    message = event.message
    assert event.name == "messages" and event.problem is None
    assert message.id == "spc-msg-1"
    assert message.content == Text("text", text="hey, what time is dinner?")
    assert message.sender.id == "+15550100"
    assert (message.space.id, message.space.phone, message.space.kind) == (
        "any;-;+15550100",
        "+15551234567",
        ChatKind.DIRECT,
    )
    assert message.space.is_direct and not message.space.is_group


@pytest.mark.parametrize(
    ("value", "kind"),
    [("dm", ChatKind.DIRECT), ("group", ChatKind.GROUP), (None, None), ("channel", None)],
)
def test_chat_kind_is_typed(value: str | None, kind: ChatKind | None) -> None:
    payload = text_delivery("hi")
    for space in (payload["space"], payload["message"]["space"]):
        space.pop("type")
        if value is not None:
            space["type"] = value
    space = parse_event(payload).message.space
    assert space.kind is kind
    assert space.is_group == (kind is ChatKind.GROUP)


@pytest.mark.parametrize(
    ("name", "kind", "check"),
    [
        (
            "attachment-image",
            Attachment,
            lambda c: (c.mime_type, c.size) == ("image/heic", 1365240),
        ),
        ("reaction", Reaction, lambda c: (c.emoji, c.target.sender.id) == ("❤️", "+15550100")),
        (
            "group-album",
            Album,
            lambda c: [i.content.name for i in c.items] == ["IMG_4351.HEIC", "IMG_4354.HEIC"],
        ),
        ("contact", Contact, lambda c: (c.name, c.phones) == ("Ada Lovelace", ("+15550101",))),
        ("richlink", RichLink, lambda c: c.url == "https://example.com/post"),
    ],
)
def test_reference_deliveries(name: str, kind: type, check) -> None:
    body = next(v["body"] for v in VECTORS if v["name"] == name)
    content = parse_event(json.loads(body)).message.content
    assert isinstance(content, kind)
    assert check(content)


def test_album_items_belong_to_the_outer_space() -> None:
    body = next(v["body"] for v in VECTORS if v["name"] == "group-album")
    message = parse_event(json.loads(body)).message
    assert all(item.space.id == message.space.id for item in message.content.items)


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        ({"type": "voice", "mimeType": "audio/mp4", "duration": 3.5}, Voice),
        (
            {"type": "reply", "content": {"type": "text", "text": "yes"}, "target": {"id": "m0"}},
            ThreadReply,
        ),
        ({"type": "contact", "name": "Ada", "phones": ["+1555"]}, Contact),
        ({"type": "future-thing", "foo": "bar"}, Unknown),
        ({"type": "text"}, Text),
    ],
)
def test_other_content_types(content: dict, kind: type) -> None:
    parsed = parse_event(delivery(content)).message.content
    assert isinstance(parsed, kind)
    assert parsed.raw == content  # unknown fields are kept


def test_unknown_fields_are_kept() -> None:
    data = text_delivery("hi")
    data["message"]["sender"]["display"] = "Ada"
    data["space"]["color"] = "blue"
    message = parse_event(data).message
    assert message.sender.raw["display"] == "Ada"
    assert message.space.raw["color"] == "blue"


def test_minimal_legacy_shape() -> None:
    event = parse_event(
        {
            "event": "messages",
            "message": {
                "id": "m1",
                "space": {"id": "s1", "platform": "iMessage"},
                "content": {"type": "text", "text": "hi"},
            },
        }
    )
    assert event.problem is None
    assert (event.message.platform, event.message.sender, event.space.id) == (
        "iMessage",
        None,
        "s1",
    )


def test_platform_names_compare_without_case() -> None:
    assert same_platform("iMessage", "imessage")
    assert not same_platform("iMessage", "telegram")
    assert not same_platform(None, "imessage")


JUNK = [
    {},
    {"event": None},
    {"event": 7, "message": "x"},
    {"event": "messages", "message": None},
    {"event": "messages", "message": {"id": 5}},
    {"event": "messages", "message": {"id": "m", "space": "s", "content": {"type": "text"}}},
    {"event": "messages", "message": {"id": "m", "space": {"id": "s"}, "content": {"type": 1}}},
    {
        "event": "messages",
        "space": [],
        "message": {"id": "m", "space": {"id": "s"}, "content": {"type": "group", "items": "x"}},
    },
    {
        "event": "messages",
        "message": {
            "id": "m",
            "space": {"id": "s"},
            "sender": "x",
            "content": {"type": "reaction", "target": 3},
        },
    },
    {
        "event": "messages",
        "message": {
            "id": "m",
            "space": {"id": "s"},
            "content": {"type": "contact", "name": 1, "phones": [1]},
        },
    },
    {
        "event": "messages",
        "message": {
            "id": "m",
            "space": {"id": "s"},
            "content": {"type": "attachment", "size": "big"},
        },
    },
    {
        "event": "messages",
        "message": {
            "id": "m",
            "space": {"id": "s"},
            "content": {"type": "group", "items": [1, {"id": 2}]},
        },
    },
]


@pytest.mark.parametrize("data", JUNK)
def test_parsing_never_raises_on_a_json_object(data: dict) -> None:
    event = parse_event(data)
    if event.name == "messages":
        assert (event.message is None) == (event.problem is not None)
