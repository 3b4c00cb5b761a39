"""Realistic deliveries, shaped like Spectrum's, for trying and testing a bot.

`content(kind, ...)` builds the `content` object of any kind Spectrum delivers
(the payload shapes of Photon's docs and the SDK's deserializer), and `delivery`
wraps it as the webhook's body. `flask spectrum send-test`, `chat`, the
playground and the tests all build their deliveries here.
"""

from __future__ import annotations

import json
import mimetypes
import uuid
from pathlib import Path
from typing import Any

GROUP_SPACE_ID = "iMessage;+;chat493787071395575843"
KINDS = (
    "text",
    "attachment",
    "voice",
    "contact",
    "richlink",
    "reaction",
    "reply",
    "album",
    "unknown",
)


def text_delivery(text: str, **fields: Any) -> dict[str, Any]:
    """A `messages` delivery carrying one inbound text; `fields` as for `delivery`."""
    return delivery({"type": "text", "text": text}, **fields)


def content(
    kind: str,
    text: str = "",
    *,
    target: str | None = None,
    file: str | None = None,
    emoji: str = "❤️",
) -> dict[str, Any]:
    """The `content` of a delivery of this kind (one of KINDS).

    `text` is the text (a reply's, or the preview of a reaction's target), or a
    URL for a rich link, or a name for a contact. `target` is the id of the
    message a reaction or reply points at. `file` names an attachment, album
    photo or voice note: a file name or path (only its name and type are sent:
    Spectrum never ships bytes).
    """
    if kind == "text":
        return {"type": "text", "text": text}
    if kind in ("attachment", "voice"):
        name = Path(file or ("memo.m4a" if kind == "voice" else "IMG_4127.HEIC")).name
        guessed = mimetypes.guess_type(name)[0] or "application/octet-stream"
        size = Path(file).stat().st_size if file and Path(file).is_file() else 1365240
        item = {"type": kind, "id": f"{uuid.uuid4()}".upper(), "name": name, "mimeType": guessed}
        return {**item, "size": size, **({"duration": 4.2} if kind == "voice" else {})}
    if kind == "contact":
        first, _, last = (text or "Ada Lovelace").partition(" ")
        return {
            "type": "contact",
            "name": {"formatted": text or "Ada Lovelace", "first": first, "last": last},
            "phones": [{"value": "+15550101", "type": "mobile"}],
        }
    if kind == "richlink":
        return {"type": "richlink", "url": text or "https://example.com/post"}
    if kind == "reaction":
        return {"type": "reaction", "emoji": emoji, "target": _ref(target, text)}
    if kind == "reply":
        return {"type": "reply", "content": content("text", text), "target": _ref(target, "")}
    if kind == "album":
        photos = [content("attachment", file=f"IMG_43{n}.HEIC") for n in (51, 54)]
        return {"type": "group", "items": [_album_item(n, photo) for n, photo in enumerate(photos)]}
    if kind == "unknown":
        return {"type": "future-thing", "note": text or "a content type newer than this code"}
    raise ValueError(f"unknown kind {kind!r}: choose one of {', '.join(KINDS)}")


def _ref(target: str | None, preview: str) -> dict[str, Any]:
    ref: dict[str, Any] = {
        "id": target or "spc-msg-00000000-0000-4000-8000-000000000001",
        "platform": "iMessage",
        "timestamp": "2026-05-14T19:06:32.000Z",
        "sender": {"id": "+15550100", "platform": "iMessage"},
    }
    return {**ref, "contentPreview": preview} if preview else ref


def _album_item(n: int, photo: dict[str, Any]) -> dict[str, Any]:
    # Spectrum fills these in from the album's message; `delivery` sets the ids.
    return {"id": f"p:{n}/", "direction": "inbound", "platform": "iMessage", "content": photo}


def delivery(
    content: dict[str, Any],
    *,
    message_id: str | None = None,
    space_id: str | None = None,
    sender_id: str = "+15550100",
    platform: str = "iMessage",
    phone: str = "+15551234567",
    chat: str = "direct",
    timestamp: str = "2026-05-14T19:06:32.000Z",
) -> dict[str, Any]:
    """A `messages` delivery with any content object.

    `chat` is "direct" (the space is the conversation with the sender) or "group".
    """
    if space_id is None:
        group = GROUP_SPACE_ID.replace("iMessage", platform, 1)  # the same shape elsewhere
        space_id = group if chat == "group" else f"any;-;{sender_id}"
    message_id = message_id or f"spc-msg-{uuid.uuid4()}"
    space_type = "group" if chat == "group" else "dm"
    space = {"id": space_id, "platform": platform, "type": space_type, "phone": phone}
    sender = {"id": sender_id, "platform": platform}
    if content.get("type") == "group":  # album items are messages of their own
        items = [
            {**item, "id": item["id"] + message_id, "sender": sender, "timestamp": timestamp}
            if str(item.get("id", "")).endswith("/")  # as `content("album")` leaves them
            else item
            for item in content["items"]
        ]
        content = {**content, "items": items}
    return {
        "event": "messages",
        "space": space,
        "message": {
            "id": message_id,
            "platform": platform,
            "direction": "inbound",
            "timestamp": timestamp,
            "sender": sender,
            "space": dict(space),
            "content": content,
        },
    }


def encode(payload: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON, non-ASCII kept raw, as Spectrum's sender writes it."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
