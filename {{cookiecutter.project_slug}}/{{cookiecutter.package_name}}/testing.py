"""A test kit for your bot: talk to it in a test, get its replies back.

    from my_bot.testing import Conversation

    def test_weather() -> None:
        chat = Conversation(bot)
        assert chat.send("/weather paris") == ["Sunny in Paris"]

`send` takes a text, or any content object (`{"type": "attachment", ...}`, see
`samples.content`), and returns the replies as the handler gave them: texts as
`str`, the others as the values of `replies.py` (`React`, `File` ...). Each
conversation keeps its own state between messages, as the real inbox does, with
changes committed only when a handler returns. `files={attachment id: bytes}`
gives `ctx.read()` what an attachment holds.
"""

from __future__ import annotations

import itertools
import tempfile
import time
from pathlib import Path
from typing import Any

from .botkit import Bot, Context
from .events import Message, parse_event
from .replies import (
    ContactCard,
    Edit,
    File,
    Files,
    Later,
    Link,
    Markdown,
    React,
    Reply,
    Say,
    Threaded,
    Unsend,
    VoiceNote,
)
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
        files: dict[str, bytes] | None = None,
    ) -> None:
        self.bot = bot
        self.chat = chat
        self.sender = sender
        self.platform = platform
        self.space_id = space_id
        self.store = store or MemoryStore()  # share one to let conversations share a sender
        self.files = dict(files or {})
        self._kept = Files(Path(tempfile.mkdtemp(prefix="spectrum-test-files-")))

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
    ) -> list[Reply | Later]:
        """Deliver one message; the bot's replies to it."""
        message = self.message(content, sender=sender)
        transaction = Transaction(self.store)
        ctx = Context(message, transaction, attempt, fetch=self._fetch)
        sent = self.bot.handle(ctx, files=self._kept)
        self.store.commit(transaction.changes)  # only once the handler has returned
        return [as_reply(content, message.id) for content in sent]

    def _fetch(self, attachment_id: str) -> bytes:
        if attachment_id not in self.files:
            raise KeyError(f"no bytes for attachment {attachment_id!r}: Conversation(files=...)")
        return self.files[attachment_id]


def as_reply(content: dict[str, Any], message_id: str) -> Any:
    """A stored reply's content as the value a handler returns (what it asked to send).

    A reaction or thread reply to the message being handled compares equal to
    `React("❤️")` / `Threaded("...")` as the handler wrote them; files come back as
    `File(bytes)` (or the URL) with their name and type.
    """
    kind, tag = content["type"], content.get("tag")
    target = content.get("target")
    to = None if target == message_id else target
    if kind == "text":
        return Say(content["text"], tag=tag) if tag else str(content["text"])
    if kind == "markdown":
        return Markdown(content["markdown"], tag=tag)
    if kind == "reaction":
        return React(content["emoji"], to=to)
    if kind == "reply":
        return Threaded(as_reply(content["content"], message_id), to=to, tag=tag)
    if kind in ("file", "voice"):
        source = content["url"] if "url" in content else Path(content["path"]).read_bytes()
        if kind == "voice":
            duration = content.get("duration")
            return VoiceNote(source, content["name"], content["mimeType"], duration, tag=tag)
        return File(source, content["name"], content["mimeType"], tag=tag)
    if kind == "contact":
        return ContactCard(content["name"], content["phones"], content["emails"], tag=tag)
    if kind == "richlink":
        return Link(content["url"], tag=tag)
    if kind == "edit":
        return Edit(content["target"], content["text"])
    if kind == "unsend":
        return Unsend(content["target"])
    if kind == "later":
        return _Scheduled(content, message_id)
    raise ValueError(f"no reply value for content {content!r}")


class _Scheduled(Later):
    """A Later as sent: it equals Later(seconds, ...) when scheduled within a second of it."""

    def __init__(self, content: dict[str, Any], message_id: str) -> None:
        replies = [as_reply(c, message_id) for c in content["replies"]]
        super().__init__(max(0.0, content["at"] - time.time()), *replies)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Later)
            and self.replies == other.replies
            and abs(self.seconds - other.seconds) < 1.0
        )

    __hash__ = None  # type: ignore[assignment]
