"""One message, whichever inbox holds it: run the bot, keep its replies, send them.

Each step is recorded before the next one starts: the bot's replies once it has
run, together with the state its handler changed, then each reply's receipt once
the sender confirms it (`save` does the recording, in the inbox's own way). A
retry, after a failed send or a crash, passes back what was recorded and carries
on from there, so the bot runs to completion once per message, its state changes
take effect once, and a confirmed reply is never sent twice. At most the one
reply in flight at a crash can go out again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from .botkit import Bot, Context
from .events import Message, parse_event
from .inbox.contract import DependencyDown, HandlingError
from .sending import Sender, SenderUnavailable
from .state import Changes, Reader, StateConflict, Transaction

log = logging.getLogger(__name__)

# [{"content": {...}, "receipt": {...} or None}]: the bot's replies as stored.
StoredReplies = list[dict[str, Any]]
# Records the replies (and, the first time, the state the handler changed) atomically.
Save = Callable[[StoredReplies, Changes | None], None]
# How often a handler is run again when the state it read moved under it.
STATE_CONFLICT_RUNS = 5


class SendFailed(HandlingError):
    """The sender did not confirm a reply; the message is tried again later."""


def handle_message(
    payload: str,
    replies: StoredReplies | None,
    bot: Bot,
    sender: Sender,
    save: Save,
    *,
    state: Reader,
    attempt: int = 1,
) -> dict[str, Any]:
    """Carry a stored message to the end; return the outcome to record as done."""
    message = parse_event(json.loads(payload)).message
    assert message is not None  # the webhook only stores valid messages
    if replies is None:
        replies = run_bot(bot, message, state, attempt, save)
    for index, reply in enumerate(replies):
        if reply["receipt"] is None:
            reply["receipt"] = send_reply(sender, message, reply["content"], index)
            if index < len(replies) - 1:  # the last receipt is recorded with the outcome
                save(replies, None)
    log.info(
        "handled message_id=%s content=%s replies=%d",
        json.dumps(message.id),
        message.content.type,
        len(replies),
    )
    return {"replies": replies}


def run_bot(bot: Bot, message: Message, state: Reader, attempt: int, save: Save) -> StoredReplies:
    """Run the handler and record its replies with its state changes, in one write."""
    for _ in range(STATE_CONFLICT_RUNS):
        transaction = Transaction(state)
        replies = [
            {"content": c, "receipt": None}
            for c in bot.handle(Context(message, transaction, attempt))
        ]
        try:
            save(replies, transaction.changes)
            return replies
        except StateConflict as exc:
            log.info("state changed meanwhile, running the handler again: %s", exc)
    raise HandlingError(f"state kept changing under the handler ({STATE_CONFLICT_RUNS} runs)")


def send_reply(
    sender: Sender, message: Message, content: dict[str, str], index: int
) -> dict[str, Any]:
    try:
        # The key is the same on every attempt at this reply, so the bridge can tell
        # a retry from a new reply.
        return sender.send(message.space, content, key=f"{message.id}#{index}")
    except SenderUnavailable as exc:
        raise DependencyDown(
            f"reply {index} to space_id={json.dumps(message.space.id)} waits: {exc}",
            retry_after=exc.retry_after,
        ) from exc
    except Exception as exc:
        raise SendFailed(
            f"reply {index} to space_id={json.dumps(message.space.id)} not sent: {exc}"
        ) from exc
