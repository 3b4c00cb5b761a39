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


# -- the refusal rule (events.py's docstring): only what the SDK's schema requires --


def minimal(**message: object) -> dict:
    """The smallest delivery the SDK's schema accepts, with `message` fields replaced."""
    fields = {"id": "m", "space": {"id": "s"}, "content": {"type": "text", "text": "hi"}}
    return {"event": "messages", "message": {**fields, **message}}


@pytest.mark.parametrize("kind", ["", " ", "TEXT", "text ", "edit", "addMember"])
def test_an_unfamiliar_content_type_is_unknown_not_refused(kind: str) -> None:
    event = parse_event(minimal(content={"type": kind, "text": "hi"}))
    assert event.problem is None
    assert event.message.content == Unknown(kind, {"type": kind, "text": "hi"})


def test_empty_ids_are_still_ids() -> None:
    event = parse_event(minimal(id="", space={"id": ""}))
    assert event.problem is None
    assert (event.message.id, event.message.space.id) == ("", "")


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        ({"id": None}, "message.id is not a string"),
        ({"id": 7}, "message.id is not a string"),
        ({"space": None}, "message.space is not an object"),
        ({"space": "s"}, "message.space is not an object"),
        ({"space": {"id": 1}}, "message.space.id is not a string"),
        ({"space": {"platform": "iMessage"}}, "message.space.id is missing"),
        ({"content": "hi"}, "message.content is not an object"),
        ({"content": {"type": None}}, "message.content.type is not a string"),
        ({"content": {"text": "hi"}}, "message.content.type is missing"),
    ],
)
def test_only_what_the_sdk_schema_requires_makes_a_delivery_unusable(
    message: dict, problem: str
) -> None:
    event = parse_event(minimal(**message))
    assert (event.message, event.problem) == (None, problem)


@pytest.mark.parametrize(
    ("field", "problem"),
    [
        ("id", "message.id is missing"),
        ("space", "message.space.id is missing"),
        ("content", "message.content is missing"),
    ],
)
def test_a_missing_required_field_is_named(field: str, problem: str) -> None:
    data = minimal()
    del data["message"][field]
    assert parse_event(data).problem == problem


def test_a_missing_message_is_named() -> None:
    assert parse_event({"event": "messages"}).problem == "message is missing"
    assert parse_event({"event": "messages", "message": []}).problem == "message is not an object"


def test_mistyped_optional_fields_read_as_absent() -> None:
    """The SDK's schema refuses these; the bot can still act on the message."""
    data = minimal(sender=None, platform=5, direction=[], timestamp={})
    data["space"] = []
    event = parse_event(data)
    assert event.problem is None
    message = event.message
    assert (message.sender, message.platform, message.direction, message.timestamp) == (
        None,
        None,
        None,
        None,
    )
    assert event.space.id == "s"


@pytest.mark.parametrize("name", [None, "", "Messages", "typing"])
def test_other_events_are_not_parsed_further(name: str | None) -> None:
    event = parse_event({"event": name, "message": "anything"})
    assert (event.message, event.problem) == (None, None)


def test_album_items_need_nothing() -> None:
    items = [{"content": {"type": "attachment", "name": "a.jpg"}}, {"id": "p:1"}, 3, None]
    album = parse_event(minimal(content={"type": "group", "items": items})).message.content
    assert [(i.id, type(i.content)) for i in album.items] == [("", Attachment), ("p:1", Unknown)]
    assert all(i.space.id == "s" for i in album.items)


def test_content_nested_too_deep_is_unknown_and_does_not_overflow() -> None:
    content: dict = {"type": "text", "text": "hi"}
    for n in range(900):
        content = (
            {"type": "reply", "content": content}
            if n % 2
            else {
                "type": "group",
                "items": [{"id": f"p:{n}", "content": content}],
            }
        )
    parsed = parse_event(minimal(content=content)).message.content
    depth = 0
    while not isinstance(parsed, Unknown):
        parsed = parsed.content if isinstance(parsed, ThreadReply) else parsed.items[0].content
        depth += 1
    assert depth == 32 and parsed.type in ("reply", "group")
