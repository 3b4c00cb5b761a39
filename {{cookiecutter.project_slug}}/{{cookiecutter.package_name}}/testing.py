"""A test kit for your bot: talk to it in a test, get its replies back.

    from my_bot.testing import Conversation

    def test_weather() -> None:
        chat = Conversation(bot)
        assert chat.send("/weather paris") == ["Sunny in Paris"]

`send` takes a text, or any content object (`{"type": "attachment", ...}`), and
returns the replies as the handler gave them: texts as `str`, reactions as
`React`. Each conversation keeps its own state between messages, as the real
inbox does, with changes committed only when a handler returns.
"""

from __future__ import annotations

import itertools
from typing import Any

from .botkit import Bot, Context, React, Reply
from .events import Message, parse_event
from .samples import delivery
from .state import MemoryStore, Transaction

_ids = itertools.count(1)


class Conversation:
    """One conversation with `bot`, its handlers run directly in this process."""

    def __init__(
        self,
        bot: Bot,
        *,
        chat: str = "direct",
        sender: str = "+15550100",
        platform: str = "iMessage",
        space_id: str | None = None,
        store: MemoryStore | None = None,
    ) -> None:
        self.bot = bot
        self.chat = chat
        self.sender = sender
        self.platform = platform
        self.space_id = space_id
        self.store = store or MemoryStore()  # share one to let conversations share a sender

    def message(self, content: str | dict[str, Any], *, sender: str | None = None) -> Message:
        """The message `send` would deliver, without sending it."""
        body = {"type": "text", "text": content} if isinstance(content, str) else content
        payload = delivery(
            body,
            message_id=f"test-msg-{next(_ids)}",
            space_id=self.space_id,
            sender_id=sender or self.sender,
            platform=self.platform,
            chat=self.chat,
        )
        message = parse_event(payload).message
        assert message is not None
        return message

    def send(
        self, content: str | dict[str, Any], *, sender: str | None = None, attempt: int = 1
    ) -> list[Reply]:
        """Deliver one message; the bot's replies to it."""
        message = self.message(content, sender=sender)
        transaction = Transaction(self.store)
        sent = self.bot.handle(Context(message, transaction, attempt))
        self.store.commit(transaction.changes)  # only once the handler has returned
        return [as_reply(content) for content in sent]


def as_reply(content: dict[str, Any]) -> Reply:
    """A stored reply's content as the value a handler returns."""
    if content.get("type") == "text":
        return str(content["text"])
    if content.get("type") == "reaction":
        return React(content["emoji"])
    raise ValueError(f"no reply value for content {content!r}")
