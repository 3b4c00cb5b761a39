"""Messages the bot starts: a reminder, a notice from an admin page, a nightly job.

    from my_bot.outbox import Outbox

    outbox = Outbox.from_settings()  # the project's inbox, from the environment and .env
    outbox.send("any;-;+15550100", "Time to stretch!", delay=600, key="stretch-42")

The message is stored in the inbox as a delivery is, then sent by the runner
(the app's bot threads, or `flask spectrum worker` with Redis) through the path
every reply takes: durable once `send` returns, sent once, retried if the
platform is down. The same `key` stores it once, however often `send` is called
(a retried job, a double click). With a delay, it waits in the inbox, so a
restart keeps it. From a handler, return `Later(seconds, ...)` instead: it is
stored together with the handler's other replies and state.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from .config import Settings
from .events import Space
from .handling import outgoing_payload
from .inbox import open_inbox
from .inbox.contract import Inbox
from .replies import Files as FileStore
from .replies import React, Threaded, to_contents
from .state import conversation_scope_of


class Outbox:
    def __init__(self, inbox: Inbox, files: FileStore) -> None:
        self.inbox = inbox
        self.files = files

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Outbox:
        settings = settings or Settings.from_env()
        return cls(open_inbox(settings), FileStore(settings.instance_dir / "files"))

    def send(
        self,
        space_id: str,
        *replies: Any,
        platform: str = "iMessage",
        phone: str | None = None,
        delay: float = 0.0,
        key: str | None = None,
    ) -> str:
        """Store `replies` for the space (after `delay` seconds); the message id it got.

        The replies are those a handler returns (texts, Markdown, File ...); a
        reaction or thread reply needs `to=` the message it answers.
        """
        for reply in replies:
            if isinstance(reply, React | Threaded) and not reply.to:
                raise TypeError(f"{type(reply).__name__} outside a handler needs to= a message id")
        if not replies:
            raise ValueError("send(space_id, ...) needs at least one reply")
        message_id = f"outgoing:{key or uuid.uuid4()}"
        space = Space(id=space_id, platform=platform, phone=phone)
        contents = to_contents(list(replies), message_id, self.files)
        payload = outgoing_payload(space, contents, message_id)
        if delay > 0:  # unordered: waiting for its time must not hold the conversation up
            self.inbox.accept(message_id, payload, not_before=time.time() + delay)
        else:
            self.inbox.accept(message_id, payload, conversation=conversation_scope_of(space))
        return message_id
