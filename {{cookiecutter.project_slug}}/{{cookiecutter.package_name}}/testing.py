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

Two ways to run, the same replies either way:

    Conversation(bot)                 the handler, called directly: milliseconds
    Conversation(bot, real=True)      the whole path in this process: a signed
                                      request to the webhook, the inbox (SQLite, in
                                      a temporary folder), the bot threads, the
                                      sender, whose hand-overs it records
"""

from __future__ import annotations

import dataclasses
import itertools
import secrets
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
    """One conversation with `bot`: its handlers run directly, or (`real=True`) the whole app."""

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
        real: bool = False,
    ) -> None:
        self.bot = bot
        self.chat = chat
        self.sender = sender
        self.platform = platform
        self.space_id = space_id
        self.store = store or MemoryStore()  # share one to let conversations share a sender
        self.files = dict(files or {})
        self._kept = Files(Path(tempfile.mkdtemp(prefix="spectrum-test-files-")))
        self.app = RealPath(bot, self.files) if real else None
        self.answer: tuple[int, Any] | None = None  # the webhook's, in the real mode

    def another(self, **changes: Any) -> Conversation:
        """A second conversation with the same bot, store and app: `chat.another(sender=...)`."""
        where = {"chat": self.chat, "sender": self.sender, "platform": self.platform}
        other = Conversation(self.bot, store=self.store, **(where | changes))
        other.files, other.app = self.files, self.app
        return other

    def delivery(
        self, content: str | dict[str, Any], *, sender: str | None = None
    ) -> dict[str, Any]:
        """The delivery `send` would make of `content`, as Spectrum would send it."""
        body = {"type": "text", "text": content} if isinstance(content, str) else content
        return delivery(
            body,
            message_id=f"test-msg-{next(_ids)}",
            space_id=self.space_id,
            sender_id=sender or self.sender,
            platform=self.platform,
            chat=self.chat,
        )

    def message(self, content: str | dict[str, Any], *, sender: str | None = None) -> Message:
        """The message `send` would deliver, without sending it."""
        message = parse_event(self.delivery(content, sender=sender)).message
        assert message is not None
        return message

    def send(
        self, content: str | dict[str, Any], *, sender: str | None = None, attempt: int = 1
    ) -> list[Reply | Later]:
        """Deliver one message; the bot's replies to it."""
        if self.app is not None:
            payload = self.delivery(content, sender=sender)
            self.answer, sent = self.app.deliver(payload)
            return [as_reply(content, payload["message"]["id"]) for content in sent]
        message = self.message(content, sender=sender)
        transaction = Transaction(self.store)
        ctx = Context(message, transaction, attempt, fetch=self._fetch)
        sent = self.bot.handle(ctx, files=self._kept)
        self.store.commit(transaction.changes)  # only once the handler has returned
        return [as_reply(content, message.id) for content in sent]

    def _fetch(self, attachment_id: str) -> bytes:
        return fetch(self.files, attachment_id)


def fetch(files: dict[str, bytes], attachment_id: str) -> bytes:
    if attachment_id not in files:
        raise KeyError(f"no bytes for attachment {attachment_id!r}: Conversation(files=...)")
    return files[attachment_id]


class BotFailed(AssertionError):
    """The bot raised (or a reply could not be sent), on the real path: its error."""


class RecordingSender:
    """Confirms every hand-over and keeps it: what would have gone to the platform."""

    mode = "test"

    def __init__(self, files: dict[str, bytes]) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []  # (space id, content)
        self.files = files

    def send(self, space: Any, content: dict[str, Any], key: str) -> dict[str, Any]:
        self.sent.append((space.id, content))
        return {"mode": self.mode, "message_id": f"sent-{key}"}

    def typing(self, space: Any, on: bool) -> None:
        pass

    def fetch(self, space: Any, attachment_id: str, max_bytes: int) -> bytes:
        return fetch(self.files, attachment_id)

    def warm_up(self) -> None:
        pass

    def close(self) -> None:
        pass


class RealPath:
    """The app in this process, with the bot's threads driven by hand, one message at a time."""

    def __init__(self, bot: Bot, files: dict[str, bytes]) -> None:
        from . import create_app  # the app only where asked: the direct mode needs none
        from .config import Settings
        from .runtime import runtime

        folder = Path(tempfile.mkdtemp(prefix="spectrum-test-app-"))
        self.secret = secrets.token_hex(32)
        settings = Settings(
            signing_secrets=(self.secret,),
            instance_dir=folder / "instance",
            env_file=folder / ".env",
            redis_url="",  # in-process: the SQLite inbox, whichever the project uses
            start_worker=False,
            typing_after=0,
        )
        self.app = create_app(settings, bot=bot)
        self.runtime = runtime(self.app)
        self.sender = RecordingSender(files)
        threads = self.runtime.bot_threads
        assert threads is not None
        threads.tools = dataclasses.replace(threads.tools, sender=self.sender)

    def deliver(self, payload: dict[str, Any]) -> tuple[tuple[int, Any], list[dict[str, Any]]]:
        """POST it signed, let the bot threads work, return the webhook's answer and the replies."""
        from .config import WEBHOOK_PATH
        from .samples import encode
        from .verify import signed_headers

        message_id = payload["message"]["id"]
        body = encode(payload)
        headers = signed_headers(self.secret, int(time.time()), body)
        response = self.app.test_client().post(WEBHOOK_PATH, data=body, headers=headers)
        threads = self.runtime.bot_threads
        assert threads is not None
        while threads.process_one():
            pass
        status = self.runtime.inbox.status(message_id)
        if status is None or response.status_code != 202:
            return (response.status_code, response.json), []
        if status.state != "done":
            error = (status.outcome or {}).get("error", status.state)
            raise BotFailed(f"{message_id}: {error}")
        stored = [reply["content"] for reply in (status.outcome or {}).get("replies", [])]
        return (response.status_code, response.json), stored


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
