"""Typed views of Spectrum deliveries.

Parsing is forgiving on purpose: providers add fields and Spectrum adds content
types without notice, so `parse_event` never raises on a JSON object. Unknown
content types become `Unknown`, and every object keeps its original JSON in `raw`.
Only what the SDK itself requires is checked (`event`, `message.id`,
`message.space.id`, `message.content.type`); a violation is reported in
`Event.problem`, not raised.
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


def parse_content(data: Any, space: Space | None = None) -> Content:
    """Turn a `content` object into the matching dataclass (never raises).

    `space` is the enclosing message's: album items carry none of their own.
    """
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
    if kind == "reply":
        inner = data.get("content")
        return ThreadReply(
            kind,
            data,
            content=parse_content(inner, space) if isinstance(inner, dict) else None,
            target=_ref(data.get("target")),
        )
    if kind == "group":
        items = data.get("items") if isinstance(data.get("items"), list) else []
        parsed = (_message(item, fallback_space=space)[0] for item in items)
        return Album(kind, data, items=tuple(m for m in parsed if m is not None))
    return Unknown(kind, data)


def _message(data: Any, fallback_space: Space | None) -> tuple[Message | None, str | None]:
    data = _dict(data)
    message_id = _str(data.get("id"))
    if not message_id:
        return None, "message.id is missing"
    space = _space(data.get("space")) or fallback_space
    if space is None:
        return None, "message.space.id is missing"
    content = _dict(data.get("content"))
    if not _str(content.get("type")):
        return None, "message.content.type is missing"
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
        return Event(name=name, space=space, problem="message is missing", raw=data)
    message, problem = _message(data["message"], fallback_space=None)
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
