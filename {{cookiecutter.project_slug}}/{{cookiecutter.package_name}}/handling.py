"""One message, whichever inbox holds it: run the bot, keep its replies, send them.

Each step is recorded before the next one starts: the bot's replies once it has
run, then each reply's receipt once the sender confirms it (`save` does the
recording, in the inbox's own way). A retry, after a failed reply or a crash,
passes back what was recorded and carries on from there, so the bot runs to
completion once per message and a confirmed reply is never sent twice. At most
the one reply in flight at a crash can go out again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from .dispatch import Bot
from .events import Message, parse_event
from .replies import Replier

log = logging.getLogger(__name__)

Replies = list[dict[str, Any]]  # [{"content": {...}, "receipt": {...} or None}]


class ReplyFailed(Exception):
    """The sender did not confirm a reply; the message is tried again later."""


def handle_message(
    payload: str,
    replies: Replies | None,
    bot: Bot,
    replier: Replier,
    save: Callable[[Replies], None],
) -> dict[str, Any]:
    """Carry a stored message to the end; return the outcome to record as done."""
    message = parse_event(json.loads(payload)).message
    assert message is not None  # the webhook only stores valid messages
    if replies is None:
        replies = [{"content": c, "receipt": None} for c in bot.handle(message)]
        save(replies)
    for index, reply in enumerate(replies):
        if reply["receipt"] is None:
            reply["receipt"] = send_reply(replier, message, reply["content"], index)
            if index < len(replies) - 1:  # the last receipt is recorded with the outcome
                save(replies)
    log.info(
        "handled message_id=%s content=%s replies=%d",
        json.dumps(message.id),
        message.content.type,
        len(replies),
    )
    return {"replies": replies}


def send_reply(
    replier: Replier, message: Message, content: dict[str, str], index: int
) -> dict[str, Any]:
    try:
        # The key is the same on every attempt at this reply, so the bridge can tell
        # a retry from a new reply.
        return replier.send(message.space, content, key=f"{message.id}#{index}")
    except Exception as exc:
        raise ReplyFailed(
            f"reply {index} to space_id={json.dumps(message.space.id)} not sent: {exc}"
        ) from exc


def backoff_seconds(attempt: int) -> float:
    """How long a message waits before its next try, after `attempt` failed ones."""
    return min(2.0**attempt, 300.0)


def describe(exc: BaseException) -> str:
    """The error as recorded on the message: a refused reply's reason says it all."""
    return str(exc) if isinstance(exc, ReplyFailed) else f"{type(exc).__name__}: {exc}"
