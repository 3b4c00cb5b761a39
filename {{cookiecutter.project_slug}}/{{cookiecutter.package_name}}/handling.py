"""One message, whichever inbox holds it: run the bot, keep its replies, send them.

Each step is recorded before the next one starts: the bot's replies once it has
run, together with the state its handler changed, then each reply's receipt once
the sender confirms it (`Recorder.save`, in the inbox's own way). A retry, after
a failed send or a crash, passes back what was recorded and carries on from
there, so the bot runs to completion once per message, its state changes take
effect once, and a confirmed reply is never sent twice. At most the one reply in
flight at a crash can go out again (the bridge's journal of sent replies closes
most of that gap).

Messages the bot starts (`outbox.py`, and `Later` replies) are stored in the
inbox too, as an "outgoing" payload carrying their replies: the runner sends
them like any other message's, without running the bot.
"""

from __future__ import annotations

import contextlib
import heapq
import importlib.util
import itertools
import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from .botkit import Bot, Context
from .config import Settings
from .events import Message, Space, Unknown, parse_event
from .inbox.contract import DependencyDown, HandlingError, Unsendable
from .metrics import REPLY_FAILURES
from .replies import Files
from .sending import DryRunSender, Sender, SenderUnavailable, SendRefused
from .state import Changes, Entry, StateConflict, Transaction, conversation_scope

log = logging.getLogger(__name__)

# [{"content": {...}, "receipt": {...} or None}]: the bot's replies as stored.
StoredReplies = list[dict[str, Any]]
OUTGOING = "spectrum.outgoing"  # the event of a message the bot starts
# How often a handler is run again when the state it read moved under it.
STATE_CONFLICT_RUNS = 5


class SendFailed(HandlingError):
    """The sender did not confirm a reply; the message is tried again later."""


class Recorder(Protocol):
    """How the inbox holding a message records its progress."""

    def save(self, replies: StoredReplies, changes: Changes | None) -> None:
        """Record the replies (and state changes) at once; LeaseLost if no longer ours."""
        ...

    def read_state(self, scope: str, name: str) -> Entry | None: ...

    def schedule(self, message_id: str, payload: str, at: float) -> bool:
        """Store a message to send at `at` (once: False if that id was stored already)."""
        ...


@dataclass(frozen=True)
class Tools:
    """What handling needs, the same for every message a runner takes."""

    bot: Bot
    sender: Sender
    files: Files
    typing_after: float = 1.0  # seconds before "typing..." shows; 0 never
    attachment_max_bytes: int = 25 * 1024 * 1024
    sender_reason: str = ""

    @classmethod
    def from_settings(cls, settings: Settings, bot: Bot) -> Tools:
        sender, reason = choose_sender(settings)
        return cls(
            bot,
            sender,
            Files(settings.instance_dir / "files"),
            typing_after=settings.typing_after,
            attachment_max_bytes=settings.attachment_max_bytes,
            sender_reason=reason,
        )


def choose_sender(settings: Settings) -> tuple[Sender, str]:
    """The bridge when it can run here, else the dry run; with the reason, for the log."""
    if importlib.util.find_spec(f"{__package__}.bridge") is None:
        return DryRunSender(), f"no reply bridge in this project ({settings.bridge_dir}/bridge.mjs)"
    from .bridge import bridge_sender  # only projects with bridge/ have it

    sender, reason = bridge_sender(settings)
    return (sender if sender is not None else DryRunSender()), reason


def handle_message(
    payload: str,
    replies: StoredReplies | None,
    tools: Tools,
    record: Recorder,
    attempt: int = 1,
) -> dict[str, Any]:
    """Carry a stored message to the end; return the outcome to record as done."""
    data = json.loads(payload)
    if data.get("event") == OUTGOING:
        message = outgoing_message(data)
        stored = [{"content": c, "receipt": None} for c in data["replies"]]
        replies = replies if replies is not None else stored
    else:
        parsed = parse_event(data).message
        assert parsed is not None  # the webhook only stores valid messages
        message = parsed
        if replies is None:
            replies = run_bot(tools, message, record, attempt)
    for index, reply in enumerate(replies):
        if reply["receipt"] is None:
            reply["receipt"], changes = deliver(tools, record, message, reply["content"], index)
            # The last receipt is recorded with the outcome, unless it named a message.
            if index < len(replies) - 1 or changes:
                record.save(replies, changes)
    log.info(
        "handled",
        extra={"message_id": message.id, "content": message.content.type, "replies": len(replies)},
    )
    return {"replies": replies}


def run_bot(tools: Tools, message: Message, record: Recorder, attempt: int) -> StoredReplies:
    """Run the handler and record its replies with its state changes, in one write."""

    def fetch(attachment_id: str) -> bytes:
        return tools.sender.fetch(message.space, attachment_id, tools.attachment_max_bytes)

    for _ in range(STATE_CONFLICT_RUNS):
        transaction = Transaction(record)
        ctx = Context(message, transaction, attempt, fetch=fetch)
        contents = tools.bot.handle(
            ctx, files=tools.files, typing=lambda: typing_while(tools, message.space)
        )
        replies = [{"content": c, "receipt": None} for c in contents]
        try:
            record.save(replies, transaction.changes)
            return replies
        except StateConflict as exc:
            log.info(
                "state changed meanwhile, running the handler again", extra={"error": str(exc)}
            )
    raise HandlingError(f"state kept changing under the handler ({STATE_CONFLICT_RUNS} runs)")


@contextlib.contextmanager
def typing_while(tools: Tools, space: Space) -> Iterator[None]:
    """Show "typing..." once the handler has taken `typing_after` seconds, until it ends.

    Stopped however the handler ends; a bridge that loses its app stops it too.
    """
    if not tools.typing_after:
        yield
        return
    key = _typist.schedule(tools.sender, space, tools.typing_after)
    try:
        yield
    finally:
        if _typist.cancel(key):  # it had started: stop it
            with contextlib.suppress(Exception):
                tools.sender.typing(space, False)


class Typist:
    """Starts "typing..." for the handlers that run past their threshold, from one thread.

    One timer thread for the whole process rather than one per message: under load,
    a thread started and joined for every message took the CPU (and the GIL) the
    webhook needed to answer on time.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._due: list[tuple[float, int, Sender, Space]] = []  # a heap, soonest first
        self._state: dict[int, str] = {}  # waiting, starting, (not) started; gone once over
        self._keys = itertools.count()
        self._thread: threading.Thread | None = None

    def schedule(self, sender: Sender, space: Space, after: float) -> int:
        with self._cond:
            key = next(self._keys)
            heapq.heappush(self._due, (time.monotonic() + after, key, sender, space))
            self._state[key] = "waiting"
            if self._thread is None or not self._thread.is_alive():  # none yet, or forked
                self._thread = threading.Thread(
                    target=self._run, name="spectrum-typing", daemon=True
                )
                self._thread.start()
            self._cond.notify()
        return key

    def cancel(self, key: int) -> bool:
        """Forget it; True if typing had started (a start in progress ends first)."""
        with self._cond:
            while self._state.get(key) == "starting":
                self._cond.wait()
            return self._state.pop(key, None) == "started"

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._due or self._due[0][0] > time.monotonic():
                    self._cond.wait(self._due[0][0] - time.monotonic() if self._due else None)
                _, key, sender, space = heapq.heappop(self._due)
                if self._state.get(key) != "waiting":
                    continue  # its handler ended before its time
                self._state[key] = "starting"
            try:
                sender.typing(space, True)
                began = "started"
            except Exception:  # only a courtesy: never fail the message
                began = "not started"
            with self._cond:
                if key in self._state:
                    self._state[key] = began
                self._cond.notify_all()


_typist = Typist()


def deliver(
    tools: Tools, record: Recorder, message: Message, content: dict[str, Any], index: int
) -> tuple[dict[str, Any], Changes | None]:
    """Send one stored reply; its receipt, and the state change naming it (a tag)."""
    key = f"{message.id}#{index}"  # the same on every attempt: the bridge sends it once
    where = f"reply {index} to space_id={json.dumps(message.space.id)}"
    if content["type"] == "later":
        payload = outgoing_payload(message.space, content["replies"], key)
        record.schedule(f"later:{key}", payload, content["at"])
        return {"mode": "scheduled", "at": content["at"]}, None
    if content["type"] in ("edit", "unsend"):
        content = {**content, "target": sent_id(record, message, content["target"])}
    try:
        receipt = tools.sender.send(message.space, content, key=key)
    except SenderUnavailable as exc:
        REPLY_FAILURES.labels("unavailable").inc()
        raise DependencyDown(f"{where} waits: {exc}", retry_after=exc.retry_after) from exc
    except SendRefused as exc:
        REPLY_FAILURES.labels("refused").inc()
        raise Unsendable(f"{where} refused: {exc}") from exc
    except Exception as exc:
        REPLY_FAILURES.labels("failed").inc()
        raise SendFailed(f"{where} not sent: {exc}") from exc
    tag, sent = content.get("tag"), receipt.get("message_id")
    if not (tag and sent):
        return receipt, None
    named = (conversation_scope(message), f"@sent:{tag}")
    return receipt, Changes(written={named: (json.dumps(sent), None)})


def sent_id(record: Recorder, message: Message, target: str) -> str:
    """The platform id of the message a tag names in this conversation, or `target` itself."""
    entry = record.read_state(conversation_scope(message), f"@sent:{target}")
    return str(entry.value) if entry and entry.present else target


def outgoing_payload(space: Space, contents: list[dict[str, Any]], message_id: str) -> str:
    """A message the bot starts, as the inbox stores it."""
    where = {"id": space.id, "platform": space.platform, "phone": space.phone}
    return json.dumps({"event": OUTGOING, "id": message_id, "space": where, "replies": contents})


def outgoing_message(data: dict[str, Any]) -> Message:
    space = data["space"]
    where = Space(id=space["id"], platform=space.get("platform"), phone=space.get("phone"))
    return Message(id=data["id"], space=where, content=Unknown(OUTGOING), platform=where.platform)
