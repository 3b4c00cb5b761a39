"""Typed views of Spectrum deliveries, and the one rule for refusing one.

A 4xx is final for Spectrum: a refused delivery is a lost message. So a `messages`
delivery is unusable (webhook.py answers 400 with `Event.problem`) only when it
breaks what the spectrum-ts SDK's own schema (`slimEnvelopeSchema` in
`@spectrum-ts/core/webhook`) requires of it:

    message               a JSON object
    message.id            a string (an empty one too)
    message.space         a JSON object, with `id` a string (an empty one too)
    message.content       a JSON object, with `type` a string (an empty one too)

Everything else is only unfamiliar, never a reason to refuse:

- a `content.type` this code does not know (new, empty, differently cased)
  becomes `Unknown`, whose `raw` holds the whole content object;
- any other field that is missing, null or of another JSON type reads as absent
  (None, "" or ()): the top-level `space`, `platform`, `direction`, `timestamp`,
  `sender`, and every field inside `content`, down to reply contents and album
  items (an album item that is not an object is left out);
- content nested more than 32 levels deep (replies in replies) becomes `Unknown`;
- fields nobody knows yet are kept in each object's `raw`.

An `event` other than "messages" (or none) is not parsed further: the webhook
acknowledges and ignores it, as the SDK does. The SDK's schema also refuses wrongly
typed optional fields (`"sender": null`); this parser accepts those deliveries,
and never refuses one the schema accepts. `parse_event` never raises on a JSON
object. tests/test_schema_differential.py holds this against the SDK's schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

JSON = dict[str, Any]


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _dict(value: Any) -> JSON:
    return value if isinstance(value, dict) else {}


def same_platform(a: str | None, b: str | None) -> bool:
    """Platform names are opaque and cased differently (`iMessage` vs `imessage`)."""
    return a is not None and b is not None and a.casefold() == b.casefold()


class ChatKind(StrEnum):
    """A one-to-one conversation, or a group chat (not to be confused with `Album`)."""

    DIRECT = "direct"
    GROUP = "group"


# Spectrum's `space.type` values (iMessage sends them; older deliveries and other
# platforms may not), as ChatKind.
_CHAT_KINDS = {"dm": ChatKind.DIRECT, "direct": ChatKind.DIRECT, "group": ChatKind.GROUP}


@dataclass(frozen=True)
class Space:
    """The conversation a message belongs to."""

    id: str
    platform: str | None = None
    kind: ChatKind | None = None  # None when the delivery does not say
    phone: str | None = None  # the iMessage line the message arrived on
    raw: JSON = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_group(self) -> bool:
        return self.kind is ChatKind.GROUP

    @property
    def is_direct(self) -> bool:
        return self.kind is ChatKind.DIRECT


@dataclass(frozen=True)
class Sender:
    id: str
    platform: str | None = None
    raw: JSON = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class MessageRef:
    """A pointer to another message (the target of a reaction or a thread reply)."""

    id: str | None
    platform: str | None = None
    timestamp: str | None = None
    sender: Sender | None = None
    content_preview: str | None = None


@dataclass(frozen=True)
class Content:
    type: str
    raw: JSON = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class Text(Content):
    text: str = ""


@dataclass(frozen=True)
class Attachment(Content):
    """Metadata only: Spectrum never ships the bytes or a download URL."""

    id: str | None = None
    name: str | None = None
    mime_type: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class Voice(Content):
    id: str | None = None
    mime_type: str | None = None
    duration: float | None = None
    size: int | None = None


@dataclass(frozen=True)
class Contact(Content):
    name: str | None = None  # the formatted name, or first + last
    phones: tuple[str, ...] = ()
    vcard: str | None = None


@dataclass(frozen=True)
class RichLink(Content):
    url: str | None = None


@dataclass(frozen=True)
class Reaction(Content):
    emoji: str | None = None
    target: MessageRef | None = None


@dataclass(frozen=True)
class ThreadReply(Content):
    """A message sent as a reply to another one (`target`), e.g. in its thread."""

    content: Content | None = None
    target: MessageRef | None = None


@dataclass(frozen=True)
class Album(Content):
    """Several messages (usually photos) sent together: Spectrum's content type "group".

    Named Album so it is not read as a group chat: that is `Space.kind`.
    """

    items: tuple[Message, ...] = ()


@dataclass(frozen=True)
class Unknown(Content):
    """A content type this code does not know yet; `raw` holds all of it."""


@dataclass(frozen=True)
class Message:
    id: str
    space: Space
    content: Content
    platform: str | None = None
    direction: str | None = None
    timestamp: str | None = None
    sender: Sender | None = None
    raw: JSON = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class Event:
    name: str | None
    message: Message | None = None
    space: Space | None = None
    problem: str | None = None  # why a `messages` event is unusable, if it is
    raw: JSON = field(default_factory=dict, repr=False, compare=False)


def _space(data: Any) -> Space | None:
    data = _dict(data)
    space_id = _str(data.get("id"))
    if space_id is None:
        return None
    return Space(
        id=space_id,
        platform=_str(data.get("platform")),
        kind=_CHAT_KINDS.get(_str(data.get("type")) or ""),
        phone=_str(data.get("phone")),
        raw=data,
    )


def _sender(data: Any) -> Sender | None:
    data = _dict(data)
    sender_id = _str(data.get("id"))
    if sender_id is None:
        return None
    return Sender(id=sender_id, platform=_str(data.get("platform")), raw=data)


def _ref(data: Any) -> MessageRef | None:
    if not isinstance(data, dict):
        return None
    return MessageRef(
        id=_str(data.get("id")),
        platform=_str(data.get("platform")),
        timestamp=_str(data.get("timestamp")),
        sender=_sender(data.get("sender")),
        content_preview=_str(data.get("contentPreview")),
    )


def _number(value: Any) -> Any:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _contact_name(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    name = _dict(value)
    formatted = _str(name.get("formatted"))
    if formatted:
        return formatted
    parts = [_str(name.get(key)) for key in ("first", "last")]
    return " ".join(p for p in parts if p) or None


def _phones(value: Any) -> tuple[str, ...]:
    entries = value if isinstance(value, list) else []
    phones = (e if isinstance(e, str) else _str(_dict(e).get("value")) for e in entries)
    return tuple(p for p in phones if p)


# Replies in replies (or albums in albums) deeper than this are Unknown: the parser
# stays far from Python's recursion limit whatever a delivery holds.
_MAX_DEPTH = 32


def parse_content(data: Any, space: Space | None = None) -> Content:
    """Turn a `content` object into the matching dataclass (never raises).

    `space` is the enclosing message's: album items carry none of their own.
    """
    return _content(data, space, depth=0)


def _content(data: Any, space: Space | None, depth: int) -> Content:
    data = _dict(data)
    kind = _str(data.get("type")) or ""
    if kind == "text":
        return Text(kind, data, text=_str(data.get("text")) or "")
    if kind == "attachment":
        return Attachment(
            kind,
            data,
            id=_str(data.get("id")),
            name=_str(data.get("name")),
            mime_type=_str(data.get("mimeType")),
            size=_number(data.get("size")),
        )
    if kind == "voice":
        return Voice(
            kind,
            data,
            id=_str(data.get("id")),
            mime_type=_str(data.get("mimeType")),
            duration=_number(data.get("duration")),
            size=_number(data.get("size")),
        )
    if kind == "contact":
        return Contact(
            kind,
            data,
            name=_contact_name(data.get("name")),
            phones=_phones(data.get("phones")),
            vcard=_str(data.get("raw")),
        )
    if kind == "richlink":
        return RichLink(kind, data, url=_str(data.get("url")))
    if kind == "reaction":
        return Reaction(kind, data, emoji=_str(data.get("emoji")), target=_ref(data.get("target")))
    if kind in ("reply", "group") and depth >= _MAX_DEPTH:
        return Unknown(kind, data)
    if kind == "reply":
        inner = data.get("content")
        return ThreadReply(
            kind,
            data,
            content=_content(inner, space, depth + 1) if isinstance(inner, dict) else None,
            target=_ref(data.get("target")),
        )
    if kind == "group":
        items = data.get("items") if isinstance(data.get("items"), list) else []
        return Album(
            kind,
            data,
            items=tuple(_item(i, space, depth + 1) for i in items if isinstance(i, dict)),
        )
    return Unknown(kind, data)


def _item(data: JSON, outer: Space | None, depth: int) -> Message:
    """An album item: nothing in it is required, like any field inside `content`."""
    space = _space(data.get("space")) or outer or Space(id="")
    return Message(
        id=_str(data.get("id")) or "",
        space=space,
        content=_content(data.get("content"), space, depth),
        platform=_str(data.get("platform")) or space.platform,
        direction=_str(data.get("direction")),
        timestamp=_str(data.get("timestamp")),
        sender=_sender(data.get("sender")),
        raw=data,
    )


def _unusable(data: JSON, key: str, path: str, expected: str) -> str:
    return f"{path} is not {expected}" if key in data else f"{path} is missing"


def _message(data: JSON) -> tuple[Message | None, str | None]:
    """The delivery's message, or why it is unusable (the module docstring's rule)."""
    message_id, space_data, content = data.get("id"), data.get("space"), data.get("content")
    if not isinstance(message_id, str):
        return None, _unusable(data, "id", "message.id", "a string")
    if "space" not in data:
        return None, "message.space.id is missing"
    if not isinstance(space_data, dict):
        return None, "message.space is not an object"
    space = _space(space_data)
    if space is None:
        return None, _unusable(space_data, "id", "message.space.id", "a string")
    if not isinstance(content, dict):
        return None, _unusable(data, "content", "message.content", "an object")
    if not isinstance(content.get("type"), str):
        return None, _unusable(content, "type", "message.content.type", "a string")
    message = Message(
        id=message_id,
        space=space,
        content=parse_content(content, space),
        platform=_str(data.get("platform")) or space.platform,
        direction=_str(data.get("direction")),
        timestamp=_str(data.get("timestamp")),
        sender=_sender(data.get("sender")),
        raw=data,
    )
    return message, None


def parse_event(data: JSON) -> Event:
    """Turn a delivery's JSON object into an `Event` (never raises on a dict)."""
    name = _str(data.get("event"))
    space = _space(data.get("space"))
    if name != "messages":
        return Event(name=name, space=space, raw=data)
    if not isinstance(data.get("message"), dict):
        unusable = _unusable(data, "message", "message", "an object")
        return Event(name=name, space=space, problem=unusable, raw=data)
    message, problem = _message(data["message"])
    if message is not None and space is not None:
        # The top-level space is the fuller copy (it carries `phone` and `type`).
        message = _with_space(message, space)
    if space is None and message is not None:
        space = message.space
    return Event(name=name, message=message, space=space, problem=problem, raw=data)


def _with_space(message: Message, space: Space) -> Message:
    if message.space.id != space.id:
        return message
    merged = Space(
        id=space.id,
        platform=message.space.platform or space.platform,
        kind=message.space.kind or space.kind,
        phone=message.space.phone or space.phone,
        raw={**space.raw, **message.space.raw},
    )
    return replace(message, space=merged, platform=message.platform or merged.platform)
