"""Realistic deliveries, shaped like Spectrum's, for `flask spectrum send-test` and the tests."""

from __future__ import annotations

import json
import uuid
from typing import Any

GROUP_SPACE_ID = "iMessage;+;chat493787071395575843"


def text_delivery(text: str, **fields: Any) -> dict[str, Any]:
    """A `messages` delivery carrying one inbound text; `fields` as for `delivery`."""
    return delivery({"type": "text", "text": text}, **fields)


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
        space_id = GROUP_SPACE_ID if chat == "group" else f"any;-;{sender_id}"
    space_type = "group" if chat == "group" else "dm"
    space = {"id": space_id, "platform": platform, "type": space_type, "phone": phone}
    return {
        "event": "messages",
        "space": space,
        "message": {
            "id": message_id or f"spc-msg-{uuid.uuid4()}",
            "platform": platform,
            "direction": "inbound",
            "timestamp": timestamp,
            "sender": {"id": sender_id, "platform": platform},
            "space": dict(space),
            "content": content,
        },
    }


def encode(payload: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON, non-ASCII kept raw, as Spectrum's sender writes it."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
