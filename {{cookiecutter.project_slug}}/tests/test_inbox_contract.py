"""The same promises, kept by every inbox this project has (SQLite; Redis if generated).

Each backend is driven the way it runs for real: the SQLite inbox by the app's
worker threads, the Redis inbox by an RQ worker (in burst mode, in this process).
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import listening, redis_arguments, unused_port

from {{ cookiecutter.package_name }}.botkit import Bot, Context
from {{ cookiecutter.package_name }}.events import Attachment, Space, Text
from {{ cookiecutter.package_name }}.handling import Tools
from {{ cookiecutter.package_name }}.inbox.contract import InboxUnavailable
from {{ cookiecutter.package_name }}.inbox.sqlite_runner import BotThreads
from {{ cookiecutter.package_name }}.inbox.sqlite_store import SQLiteInbox
from {{ cookiecutter.package_name }}.outbox import Outbox
from {{ cookiecutter.package_name }}.replies import (
    Edit,
    Files,
    Later,
    React,
    Say,
    Unsend,
)
from {{ cookiecutter.package_name }}.samples import delivery, encode, text_delivery
from {{ cookiecutter.package_name }}.sending import SenderUnavailable, SendRefused

HAS_REDIS = importlib.util.find_spec("{{ cookiecutter.package_name }}.inbox.redis_store") is not None
BACKENDS = ["sqlite", "redis"] if HAS_REDIS else ["sqlite"]
ATTEMPTS = 3


class Sender:
    """Confirms every reply except those told to fail, a given number of times."""

    mode = "test"

    def __init__(self) -> None:
        self.failures: dict[str, int] = {}
        self.outage = 0  # sends refused as "unavailable" before it comes back
        self.refuse: set[str] = set()  # kinds the platform cannot do at all
        self.sent: list[str] = []
        self.contents: list[tuple[str, dict]] = []  # (space id, content) of each send
        self.typing_calls: list[bool] = []
        self.attachments: dict[str, bytes] = {}

    def send(self, space: Space, content: dict, key: str) -> dict:
        if self.outage > 0:
            self.outage -= 1
            raise Restarting("the bridge failed recently; next start in 0.0s")
        if content["type"] in self.refuse:
            raise SendRefused(f"WhatsApp does not support {content['type']}")
        text = content.get("text", "")
        if self.failures.get(text, 0) > 0:
            self.failures[text] -= 1
            raise ConnectionError("bridge exited")
        self.sent.append(text)
        self.contents.append((space.id, content))
        return {"mode": self.mode, "key": key, "message_id": f"sent-{key}"}

    def typing(self, space: Space, on: bool) -> None:
        self.typing_calls.append(on)

    def fetch(self, space: Space, attachment_id: str, max_bytes: int) -> bytes:
        return self.attachments[attachment_id]

    def close(self) -> None:
        pass


class Restarting(SenderUnavailable):
    retry_after = 0.0


class Scenario:
    """A bot that can be told to fail, and its runs."""

    def __init__(self) -> None:
        self.bot, self.runs, self.failing = Bot(), [], 0
        self.sender = Sender()

        @self.bot.on(Text)
        def reply(ctx: Context, content: Text) -> list[str]:
            self.runs.append(ctx.message.id)
            if self.failing:
                self.failing -= 1
                raise RuntimeError("boom")
            return [f"one {content.text}", f"two {content.text}"]


class Backend:
    name: str
    inbox: object

    def process(self, scenario: Scenario, typing_after: float = 0) -> None:
        """Work until nothing is left to do now (retries included)."""
        raise NotImplementedError

    def another_process(self) -> object:
        raise NotImplementedError

    def ready(self) -> list[str]:
        raise NotImplementedError

    def reopen(self, ordered: bool) -> None:
        raise NotImplementedError


class SQLiteBackend(Backend):
    name = "sqlite"

    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path / "inbox.sqlite3"
        self.inbox = SQLiteInbox(self.path)

    def process(self, scenario: Scenario, typing_after: float = 0) -> None:
        tools = Tools(
            scenario.bot, scenario.sender, Files(self.path.parent / "files"), typing_after
        )
        worker = BotThreads(
            self.inbox, scenario.bot, scenario.sender, max_attempts=ATTEMPTS, tools=tools
        )
        while True:
            # Retries now, rather than after their backoff (messages sent later keep their time).
            self.inbox._run(
                "UPDATE inbox SET available_at = 0 WHERE state = 'pending' AND outcome IS NOT NULL"
            )
            if not worker.process_one():
                return

    def another_process(self) -> SQLiteInbox:
        return SQLiteInbox(self.path)

    def ready(self) -> list[str]:
        """The messages that could be claimed now, each claimed in turn."""
        claims = iter(lambda: self.inbox.claim(lease_seconds=60), None)
        return [claim.message_id for claim in claims]

    def reopen(self, ordered: bool) -> None:
        self.inbox = SQLiteInbox(self.path, ordered=ordered)


class RedisBackend(Backend):
    name = "redis"

    def __init__(self, url: str) -> None:
        from {{ cookiecutter.package_name }}.inbox.redis_store import RedisInbox

        self.url = url
        self.files = Path(tempfile.mkdtemp()) / "files"
        # No pause between retries here: RQ requeues at once without its scheduler.
        self.inbox = RedisInbox(url, max_attempts=ATTEMPTS, retry_intervals=[0])
        self.inbox.connection.flushdb()

    def process(self, scenario: Scenario, typing_after: float = 0) -> None:
        from {{ cookiecutter.package_name }}.inbox import redis_runner

        tools = redis_runner.JobTools(
            Tools(scenario.bot, scenario.sender, Files(self.files), typing_after), self.inbox
        )
        worker = redis_runner.BotWorker(
            [self.inbox.queue], connection=self.inbox.connection, tools=tools
        )
        # The scheduler queues what was due by now (messages the bot sends later).
        worker.work(burst=True, with_scheduler=True, logging_level="WARNING")

    def another_process(self) -> object:
        from {{ cookiecutter.package_name }}.inbox.redis_store import RedisInbox

        return RedisInbox(self.url, max_attempts=ATTEMPTS)

    def ready(self) -> list[str]:
        """The messages whose jobs RQ has queued (the others wait for theirs)."""
        jobs = self.inbox.queue.get_jobs()
        return [job.args[0] for job in jobs]

    def reopen(self, ordered: bool) -> None:
        from {{ cookiecutter.package_name }}.inbox.redis_store import RedisInbox

        self.inbox = RedisInbox(
            self.url, max_attempts=ATTEMPTS, retry_intervals=[0], ordered=ordered
        )


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        yield SQLiteBackend(tmp_path)
    else:
        yield RedisBackend(request.getfixturevalue("redis_server"))


def payload(message_id: str, text: str = "hi") -> str:
    return encode(text_delivery(text, message_id=message_id)).decode()


def texts(status) -> list[str]:
    return [r["content"]["text"] for r in status.outcome["replies"]]


def test_a_message_is_accepted_once(backend: Backend) -> None:
    assert backend.inbox.accept("m-1", payload("m-1"))
    assert not backend.inbox.accept("m-1", payload("m-1"))
    assert not backend.another_process().accept("m-1", payload("m-1"))  # across processes
    assert backend.inbox.status("m-1").state == "pending"
    assert backend.inbox.status("m-unknown") is None


def test_concurrent_copies_are_accepted_once(backend: Backend) -> None:
    results: list[bool] = []
    inboxes = [backend.another_process() for _ in range(10)]

    def accept(inbox) -> None:
        results.append(inbox.accept("m-1", payload("m-1")))

    threads = [threading.Thread(target=accept, args=(inbox,)) for inbox in inboxes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 9 + [True]


def test_each_message_is_handled_once(backend: Backend) -> None:
    scenario = Scenario()
    for n in range(5):
        backend.inbox.accept(f"m-{n}", payload(f"m-{n}", f"t{n}"))
    backend.inbox.accept("m-0", payload("m-0", "t0"))  # a repeat
    backend.process(scenario)
    assert sorted(scenario.runs) == [f"m-{n}" for n in range(5)]
    status = backend.inbox.status("m-3")
    assert (status.state, texts(status)) == ("done", ["one t3", "two t3"])
    assert all(r["receipt"]["mode"] == "test" for r in status.outcome["replies"])


def test_a_failing_bot_is_retried(backend: Backend) -> None:
    scenario = Scenario()
    scenario.failing = 1
    backend.inbox.accept("m-1", payload("m-1"))
    backend.process(scenario)
    status = backend.inbox.status("m-1")
    assert (status.state, status.attempts) == ("done", 2)
    assert scenario.runs == ["m-1", "m-1"]


def test_a_failed_reply_is_retried_alone(backend: Backend) -> None:
    scenario = Scenario()
    scenario.sender.failures = {"two hi": 1}
    backend.inbox.accept("m-1", payload("m-1"))
    backend.process(scenario)
    assert backend.inbox.status("m-1").state == "done"
    assert scenario.runs == ["m-1"]  # the bot ran once: its replies were kept
    assert scenario.sender.sent == ["one hi", "two hi"]  # the confirmed one not sent again


def test_an_outage_longer_than_every_attempt_parks_nothing(backend: Backend) -> None:
    scenario = Scenario()
    scenario.sender.outage = 4 * ATTEMPTS  # far more tries than a message has attempts
    backend.inbox.accept("m-1", payload("m-1"))
    backend.inbox.accept("m-2", payload("m-2"))
    backend.process(scenario)
    assert backend.inbox.parked() == []
    for message_id in ("m-1", "m-2"):
        status = backend.inbox.status(message_id)
        assert (status.state, status.attempts) == ("done", 1)  # no attempt used up waiting
    assert sorted(scenario.runs) == ["m-1", "m-2"]  # the bot ran once each
    assert scenario.sender.outage == 0


def test_a_message_that_keeps_failing_is_parked_then_replayed(backend: Backend) -> None:
    scenario = Scenario()
    scenario.failing = 99
    backend.inbox.accept("m-1", payload("m-1"))
    backend.inbox.accept("m-2", payload("m-2"))
    backend.process(scenario)
    parked = backend.inbox.parked()
    assert [p.message_id for p in parked] == ["m-1", "m-2"]
    assert parked[0].state == "failed" and parked[0].outcome == {"error": "RuntimeError: boom"}
    assert len(scenario.runs) == 2 * ATTEMPTS

    scenario.failing = 0  # the bug is fixed
    assert backend.inbox.replay("m-1")
    assert not backend.inbox.replay("m-1")  # in line again, not parked
    assert not backend.inbox.replay("m-unknown")
    backend.process(scenario)
    assert backend.inbox.status("m-1").state == "done"
    assert [p.message_id for p in backend.inbox.parked()] == ["m-2"]


class Counting:
    """A bot that counts its conversation's messages in state, before it may fail."""

    def __init__(self, fail: dict[str, int] | None = None) -> None:
        self.bot, self.runs, self.sender = Bot(), [], Sender()
        self.fail = dict(fail or {})  # message id -> times to fail (after counting)

        @self.bot.on(Text)
        def count(ctx: Context, content: Text) -> str:
            self.runs.append(ctx.message.id)
            ctx.state["n"] = ctx.state.get("n", 0) + 1
            if self.fail.get(ctx.message.id, 0) > 0:
                self.fail[ctx.message.id] -= 1
                raise RuntimeError("after counting")
            return f"{content.text} is number {ctx.state['n']}"


def accept_in(backend: Backend, conversation: str, *message_ids: str) -> None:
    for message_id in message_ids:
        body = payload(message_id, message_id)
        assert backend.inbox.accept(message_id, body, conversation=conversation)


def test_state_changes_take_effect_once_with_the_replies(backend: Backend) -> None:
    counting = Counting(fail={"a1": 1})
    counting.sender.failures = {"a2 is number 2": 1}  # sent after the state is committed
    accept_in(backend, "chat-a", "a1", "a2", "a3")
    backend.process(counting)
    # a1 counted, raised, was retried: counted once. a2's send failed: not run again.
    assert counting.runs == ["a1", "a1", "a2", "a3"]
    assert counting.sender.sent == ["a1 is number 1", "a2 is number 2", "a3 is number 3"]


def test_a_conversation_is_handled_in_order_others_meanwhile(backend: Backend) -> None:
    counting = Counting(fail={"a1": 1})
    accept_in(backend, "chat-a", "a1")
    accept_in(backend, "chat-b", "b1")
    accept_in(backend, "chat-a", "a2")
    backend.process(counting)
    # a2 waited for a1, through a1's retry; b1 did not wait for chat-a.
    assert [run for run in counting.runs if run.startswith("a")] == ["a1", "a1", "a2"]
    assert counting.runs.index("b1") < counting.runs.index("a2")
    assert [backend.inbox.status(m).state for m in ("a1", "a2", "b1")] == ["done"] * 3


def test_the_next_in_a_conversation_waits_only_for_the_one_before(backend: Backend) -> None:
    accept_in(backend, "chat-a", "a1", "a2")
    accept_in(backend, "chat-b", "b1")
    assert backend.ready() == ["a1", "b1"]  # a2 waits for a1, b1 for no one


def test_unordered_inboxes_take_a_conversation_all_at_once(backend: Backend) -> None:
    backend.reopen(ordered=False)
    accept_in(backend, "chat-a", "a1", "a2")
    assert backend.ready() == ["a1", "a2"]


def test_a_parked_message_does_not_hold_its_conversation_up(backend: Backend) -> None:
    counting = Counting(fail={"a1": 99})
    accept_in(backend, "chat-a", "a1", "a2")
    backend.process(counting)
    assert backend.inbox.status("a1").state == "failed"
    assert counting.sender.sent == ["a2 is number 1"]  # a1's failed counts never took effect
    counting.fail = {}
    assert backend.inbox.replay("a1")
    backend.process(counting)
    assert counting.sender.sent == ["a2 is number 1", "a1 is number 2"]


class Kinds:
    """A bot that answers each text with the reply kind it names."""

    def __init__(self, replies: dict[str, object]) -> None:
        self.bot, self.sender, self.runs = Bot(), Sender(), []

        @self.bot.on(Text)
        def answer(ctx: Context, content: Text) -> object:
            self.runs.append(content.text)
            reply = replies[content.text]
            return reply(ctx) if callable(reply) else reply

        @self.bot.on(Attachment, typing=False)
        def size(ctx: Context, content: Attachment) -> str:
            return f"{len(ctx.read(content))} bytes"


def test_a_tagged_reply_is_edited_and_unsent_by_its_tag(backend: Backend) -> None:
    kinds = Kinds(
        {
            "start": Say("working", tag="status"),
            "done": Edit("status", "finished"),
            "gone": lambda ctx: [f"it was {ctx.sent('status')}", Unsend("status")],
        }
    )
    accept_in(backend, "chat-a", "start", "done", "gone")
    backend.process(kinds)
    assert [content for _, content in kinds.sender.contents] == [
        {"type": "text", "text": "working", "tag": "status"},
        {"type": "edit", "target": "sent-start#0", "text": "finished"},  # its platform id
        {"type": "text", "text": "it was sent-start#0"},
        {"type": "unsend", "target": "sent-start#0"},
    ]


def test_later_replies_are_sent_in_their_time_once(backend: Backend) -> None:
    kinds = Kinds({"remind": ["noted", Later(0.6, "time to stretch")]})
    accept_in(backend, "chat-a", "remind")
    backend.process(kinds)
    assert kinds.sender.sent == ["noted"]
    assert backend.inbox.status("later:remind#1").state == "pending"  # kept in the inbox
    time.sleep(0.7)
    backend.process(kinds)
    backend.process(kinds)
    assert kinds.sender.sent == ["noted", "time to stretch"]
    assert kinds.runs == ["remind"]


def test_the_bot_starts_a_message_once_per_key(backend: Backend, tmp_path: Path) -> None:
    outbox = Outbox(backend.inbox, Files(tmp_path / "files"))
    for _ in range(3):  # a retried job, a double click
        outbox.send("any;-;+15550199", "your order shipped", key="order-42")
    kinds = Kinds({})
    backend.process(kinds)
    assert kinds.sender.contents == [
        ("any;-;+15550199", {"type": "text", "text": "your order shipped"})
    ]
    with pytest.raises(TypeError, match="React outside a handler needs to= a message id"):
        outbox.send("any;-;+15550199", React("👍"))


def test_what_the_platform_cannot_do_is_parked_at_once(backend: Backend) -> None:
    kinds = Kinds({"edit": Edit("x", "y")})
    kinds.sender.refuse = {"edit"}
    accept_in(backend, "chat-a", "edit")
    backend.process(kinds)
    status = backend.inbox.status("edit")
    assert (status.state, status.attempts) == ("failed", 1)  # no use trying again
    assert "refused: WhatsApp does not support edit" in status.outcome["error"]


@pytest.mark.parametrize("fails", [False, True])
def test_typing_shows_while_a_slow_handler_runs_and_always_stops(
    backend: Backend, fails: bool
) -> None:
    def slow(ctx: Context) -> str:
        time.sleep(0.3)
        if fails:
            raise RuntimeError("after a while")
        return "done"

    kinds = Kinds({"slow": slow, "quick": "done"})
    accept_in(backend, "chat-a", "quick", "slow")
    backend.process(kinds, typing_after=0.1)
    assert kinds.sender.typing_calls[:2] == [True, False]  # the quick one showed none
    assert kinds.sender.typing_calls.count(True) == kinds.sender.typing_calls.count(False)


def test_a_handler_reads_the_attachment_it_got(backend: Backend) -> None:
    kinds = Kinds({})
    kinds.sender.attachments = {"A1": b"12345"}
    photo = {"type": "attachment", "id": "A1", "name": "p.png", "mimeType": "image/png"}
    backend.inbox.accept("m-1", encode(delivery(photo, message_id="m-1")).decode())
    backend.process(kinds, typing_after=0.0)
    assert kinds.sender.sent == ["5 bytes"]


def test_unavailable_storage_raises_then_recovers(backend: Backend, tmp_path: Path) -> None:
    if backend.name == "sqlite":
        blocker = tmp_path / "blocked"
        blocker.write_text("a file where the inbox's folder should be")
        broken, repair = SQLiteInbox(blocker / "inbox.sqlite3"), blocker.unlink
    else:
        from {{ cookiecutter.package_name }}.inbox.redis_store import RedisInbox

        port = unused_port()  # no Redis there yet
        broken, servers = RedisInbox(f"redis://127.0.0.1:{port}/0"), []

        def repair() -> None:
            servers.append(start_redis(port))

    with pytest.raises(InboxUnavailable):
        broken.accept("m-1", payload("m-1"))
    with pytest.raises(InboxUnavailable):
        broken.ping()
    repair()
    try:
        assert broken.accept("m-1", payload("m-1"))
        broken.ping()
    finally:
        if backend.name == "redis":
            servers[0].terminate()
            servers[0].wait()


def start_redis(port: int) -> subprocess.Popen:
    server = subprocess.Popen(
        redis_arguments(shutil.which("redis-server"), port, Path(tempfile.mkdtemp())),
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not listening(port):
        assert time.monotonic() < deadline, "redis-server did not start"
        time.sleep(0.05)
    return server
