"""The inbox: dedupe across processes, leases, retries, retention."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from pathlib import Path

import pytest
from conftest import BlockingBot, wait_until

from {{ cookiecutter.package_name }}.botkit import Bot, Context
from {{ cookiecutter.package_name }}.events import Text
from {{ cookiecutter.package_name }}.inbox import sqlite_runner
from {{ cookiecutter.package_name }}.inbox.contract import InboxUnavailable
from {{ cookiecutter.package_name }}.inbox.sqlite_runner import BotThreads
from {{ cookiecutter.package_name }}.inbox.sqlite_store import SQLiteInbox
from {{ cookiecutter.package_name }}.samples import encode, text_delivery
from {{ cookiecutter.package_name }}.sending import DryRunSender


@pytest.fixture
def inbox(tmp_path: Path) -> SQLiteInbox:
    return SQLiteInbox(tmp_path / "inbox.sqlite3")


def payload(text: str = "hi", message_id: str = "m-1") -> str:
    return encode(text_delivery(text, message_id=message_id)).decode()


def test_accept_once(inbox: SQLiteInbox) -> None:
    assert inbox.accept("m-1", payload())
    assert not inbox.accept("m-1", payload())
    assert SQLiteInbox(inbox.path).accept("m-1", payload()) is False  # after a restart


def _accept_all(path: str, ids: list[str], results: multiprocessing.Queue) -> None:
    store = SQLiteInbox(Path(path))
    results.put(sum(store.accept(i, payload(message_id=i)) for i in ids))


def test_dedupe_holds_across_processes(inbox: SQLiteInbox) -> None:
    """Four processes (like four gunicorn workers) get the same 50 messages at once."""
    inbox.ping()  # create the file and schema first
    ids = [f"m-{n}" for n in range(50)]
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_accept_all, args=(str(inbox.path), ids, results)) for _ in range(4)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert sum(results.get(timeout=5) for _ in procs) == 50


def _first_use(inbox: SQLiteInbox, n: int, barrier: threading.Barrier, errors: list) -> None:
    barrier.wait()
    try:
        if n == 0:
            inbox.purge(time.time())  # what a starting worker thread does first
        else:
            inbox.accept(f"m-{n}", payload())
    except InboxUnavailable as exc:
        errors.append(exc)


def test_first_use_from_many_threads_at_once(tmp_path: Path) -> None:
    """A new file opened by several workers together: SQLite may say "locked" at once."""
    for attempt in range(20):
        inbox, barrier, errors = SQLiteInbox(tmp_path / f"{attempt}.db"), threading.Barrier(4), []
        threads = [
            threading.Thread(target=_first_use, args=(inbox, n, barrier, errors)) for n in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []


def test_a_delivery_writes_before_bot_threads_that_came_first(
    inbox: SQLiteInbox, monkeypatch
) -> None:
    """Spectrum waits on the delivery's answer; a bot thread's write only delays its message."""
    writer, order = inbox._writes, []
    monkeypatch.setattr(type(writer), "PATIENCE", 60)  # however slow this machine is today

    def write(name: str, first: bool) -> None:
        with writer.first() if first else writer:
            order.append(name)

    with writer:
        bots = [threading.Thread(target=write, args=(f"bot-{n}", False)) for n in range(3)]
        for n, thread in enumerate(bots):
            thread.start()
            wait_until(lambda n=n: writer.waiting[False] == n + 1, timeout=5, poll=0.001)
        delivery = threading.Thread(target=write, args=("delivery", True))
        delivery.start()
        wait_until(lambda: writer.waiting[True] == 1, timeout=5, poll=0.001)
    for thread in [*bots, delivery]:
        thread.join(5)
    assert order == ["delivery", "bot-0", "bot-1", "bot-2"]


def test_a_flood_of_deliveries_does_not_stop_the_bot_threads(
    inbox: SQLiteInbox, monkeypatch
) -> None:
    """A bot thread that has waited PATIENCE queues with the deliveries."""
    writer, stop, wrote = inbox._writes, threading.Event(), threading.Event()
    monkeypatch.setattr(type(writer), "PATIENCE", 0.05)

    def flood() -> None:  # always a delivery waiting for the next turn
        while not stop.is_set():
            with writer.first():
                time.sleep(0.001)

    def bot_write() -> None:
        with writer:
            wrote.set()

    flooders = [threading.Thread(target=flood) for _ in range(3)]
    for thread in flooders:
        thread.start()
    try:
        wait_until(lambda: writer.waiting[True] >= 1, timeout=5, poll=0.001)
        threading.Thread(target=bot_write).start()
        assert wrote.wait(5), "the bot thread never got to write"
    finally:
        stop.set()
        for thread in flooders:
            thread.join(5)


class _WakesUpRaising(threading.Condition):
    def wait(self, timeout: float | None = None) -> bool:
        super().wait(timeout)
        raise KeyboardInterrupt


def test_a_delivery_interrupted_as_its_turn_comes_passes_the_turn_on(
    inbox: SQLiteInbox,
) -> None:
    writer, lock, interrupted = inbox._writes, threading.Lock(), []
    writer.lines = {True: _WakesUpRaising(lock), False: threading.Condition(lock)}

    def delivery() -> None:
        try:
            with writer.first():
                pass
        except KeyboardInterrupt:
            interrupted.append(True)

    with writer:
        thread = threading.Thread(target=delivery)
        thread.start()
        wait_until(lambda: writer.waiting[True] == 1, timeout=5, poll=0.001)
    thread.join(5)

    def bot_write() -> None:
        with writer:
            pass

    later = threading.Thread(target=bot_write, daemon=True)  # hangs if the turn was lost
    later.start()
    later.join(5)
    assert interrupted and not later.is_alive(), "the writer was left to no one"


def test_claim_oldest_first_and_only_once(inbox: SQLiteInbox) -> None:
    inbox.accept("m-1", payload(message_id="m-1"))
    inbox.accept("m-2", payload(message_id="m-2"))
    first, second = inbox.claim(60), inbox.claim(60)
    assert (first.message_id, second.message_id) == ("m-1", "m-2")
    assert inbox.claim(60) is None


def test_expired_lease_is_taken_up_again(inbox: SQLiteInbox) -> None:
    inbox.accept("m-1", payload())
    lost = inbox.claim(lease_seconds=-1)  # its worker died; the lease is already over
    again = inbox.claim(60)
    assert (again.message_id, again.attempts) == ("m-1", 2)
    inbox.done(lost, {"replies": ["late"]})  # the old claim cannot finish it any more
    assert inbox.status("m-1").state == "working"
    inbox.done(again, {"replies": ["ok"]})
    assert inbox.status("m-1").outcome == {"replies": ["ok"]}


def test_a_lease_that_ran_out_goes_before_pending_messages(inbox: SQLiteInbox) -> None:
    inbox.accept("m-1", payload(message_id="m-1"), conversation="a")
    inbox.accept("m-2", payload(message_id="m-2"), conversation="b")
    inbox.accept("m-3", payload(message_id="m-3"), conversation="c", not_before=time.time() + 60)
    held = inbox.claim(60)
    inbox.claim(lease_seconds=-1)  # m-2, whose worker died
    inbox.release(held)  # m-1 is pending again, and older
    assert [inbox.claim(60).message_id for _ in range(2)] == ["m-2", "m-1"]
    assert inbox.claim(60) is None  # m-3 is not due


def claim_steps(inbox: SQLiteInbox) -> int:
    """SQLite's virtual machine steps (in hundreds) that finding the next message takes."""
    steps = [0]
    db = inbox._db()
    db.set_progress_handler(lambda: steps.__setitem__(0, steps[0] + 1), 100)
    try:
        db.execute(inbox._next, {"now": time.time()}).fetchall()
    finally:
        db.set_progress_handler(None, 100)
    return steps[0]


@pytest.mark.parametrize("ordered", [True, False])
def test_finding_the_next_message_takes_as_long_whatever_waits(
    tmp_path: Path, ordered: bool
) -> None:
    """Neither a backlog nor messages scheduled for later make a claim slower.

    Ordered by arrival, SQLite sorted every ready message at each claim: 4 ms each
    with 10,000 waiting, a drain growing with the square of the backlog.
    """
    alone = SQLiteInbox(tmp_path / "alone.sqlite3", ordered=ordered)
    alone.accept("m-1", payload(message_id="m-1"))
    inbox = SQLiteInbox(tmp_path / "inbox.sqlite3", ordered=ordered)
    later = time.time() + 3600
    for n in range(1, 1001):  # reminders for later, then a backlog
        inbox.accept(
            f"r-{n}", payload(message_id=f"r-{n}"), conversation=f"r-{n}", not_before=later
        )
    for n in range(1, 1001):
        inbox.accept(f"m-{n}", payload(message_id=f"m-{n}"), conversation=f"c-{n % 100}")
    assert claim_steps(inbox) <= claim_steps(alone) + 2
    assert inbox.claim(60).message_id == "m-1"


def test_purge_forgets_only_old_finished_messages(inbox: SQLiteInbox) -> None:
    inbox.accept("m-done", payload(message_id="m-done"))
    inbox.accept("m-pending", payload(message_id="m-pending"))
    inbox.done(inbox.claim(60), {})
    assert inbox.purge(older_than=time.time() - 60) == 0
    assert inbox.purge(older_than=time.time() + 1) == 1
    assert inbox.status("m-done") is None
    assert inbox.status("m-pending").state == "pending"


def test_unavailable_store_raises_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "dir.sqlite3").mkdir()
    with pytest.raises(InboxUnavailable, match="OperationalError"):
        SQLiteInbox(tmp_path / "dir.sqlite3").accept("m-1", payload())


def flaky_bot(failures: int) -> Bot:
    bot, calls = Bot(), []

    @bot.on(Text)
    def handler(ctx: Context, content: Text) -> str:
        calls.append(ctx.message.id)
        if len(calls) <= failures:
            raise RuntimeError(f"boom {len(calls)}")
        return "ok"

    return bot


def test_a_failing_bot_is_retried_then_succeeds(inbox: SQLiteInbox) -> None:
    worker = BotThreads(inbox, flaky_bot(failures=1), DryRunSender(), max_attempts=3)
    inbox.accept("m-1", payload())
    assert worker.process_one()
    status = inbox.status("m-1")
    assert (status.state, status.outcome) == ("pending", {"error": "RuntimeError: boom 1"})
    assert not worker.process_one()  # backing off
    inbox._run("UPDATE inbox SET available_at = 0")
    assert worker.process_one()
    assert inbox.status("m-1").state == "done"


def test_a_message_that_keeps_failing_is_parked(inbox: SQLiteInbox) -> None:
    worker = BotThreads(inbox, flaky_bot(failures=99), DryRunSender(), max_attempts=2)
    inbox.accept("m-1", payload())
    for _ in range(2):
        inbox._run("UPDATE inbox SET available_at = 0")
        worker.process_one()
    status = inbox.status("m-1")
    assert (status.state, status.attempts) == ("failed", 2)
    assert status.outcome == {"error": "RuntimeError: boom 2"}


def test_stop_lets_the_message_in_hand_finish(inbox: SQLiteInbox) -> None:
    bot = Bot()

    @bot.on(Text)
    def slow(ctx: Context, content: Text) -> str:
        time.sleep(0.3)
        return "finished"

    worker = BotThreads(inbox, bot, DryRunSender(), threads=1, poll_seconds=0.01)
    inbox.accept("m-1", payload())
    worker.start()
    deadline = time.monotonic() + 5
    while inbox.status("m-1").state == "pending" and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.stop(timeout=5)
    assert inbox.status("m-1").state == "done"


def test_parked_messages_can_be_listed_and_replayed(inbox: SQLiteInbox) -> None:
    worker = BotThreads(inbox, flaky_bot(failures=1), DryRunSender(), max_attempts=1)
    inbox.accept("m-1", payload())
    worker.process_one()
    (parked,) = inbox.parked()
    assert (parked.message_id, parked.attempts) == ("m-1", 1)
    assert parked.outcome == {"error": "RuntimeError: boom 1"}
    assert inbox.replay("m-1")
    assert not inbox.replay("m-1")  # no longer parked
    assert inbox.parked() == []
    assert worker.process_one()  # picked up again, with fresh attempts
    assert inbox.status("m-1").state == "done"


def test_a_slow_bot_keeps_its_message(inbox: SQLiteInbox) -> None:
    """The heartbeat renews the lease, so no second worker takes a message in hand."""
    bot = BlockingBot(timeout=5)
    started, release = bot.started, bot.release
    worker = BotThreads(inbox, bot, DryRunSender(), threads=1, lease_seconds=0.3, poll_seconds=0.01)
    inbox.accept("m-1", payload())
    worker.start()
    assert started.wait(5)
    time.sleep(1.0)  # three leases long
    assert inbox.claim(lease_seconds=1) is None
    release.set()
    worker.stop(timeout=5)
    assert inbox.status("m-1").state == "done"


def test_a_crashed_workers_message_comes_back_after_its_lease(inbox: SQLiteInbox) -> None:
    inbox.accept("m-1", payload())
    assert inbox.claim(lease_seconds=0.2) is not None  # then the worker dies: no heartbeat
    assert inbox.claim(lease_seconds=0.2) is None
    time.sleep(0.3)
    assert inbox.claim(lease_seconds=0.2).attempts == 2


def test_stop_gives_back_what_it_could_not_finish(inbox: SQLiteInbox) -> None:
    bot = BlockingBot(timeout=5)
    started, release = bot.started, bot.release
    worker = BotThreads(inbox, bot, DryRunSender(), threads=1, poll_seconds=0.01)
    inbox.accept("m-1", payload())
    worker.start()
    assert started.wait(5)
    worker.stop(timeout=0.1)
    status = inbox.status("m-1")
    assert (status.state, status.attempts) == ("pending", 0)  # ready for the next worker
    release.set()
    time.sleep(0.2)  # the stuck thread finishes, but its claim is gone: nothing marked done
    assert inbox.status("m-1").state == "pending"


def test_bot_threads_start_one_after_another_not_all_at_once(inbox: SQLiteInbox) -> None:
    """A worker replacing a killed one finds a backlog: its threads must not all claim at once."""
    count = 10
    handling: list[float] = []
    release = threading.Event()
    bot = Bot()

    @bot.on(Text)
    def hold(ctx: Context, content: Text) -> str:
        handling.append(time.monotonic())
        release.wait(10)  # each thread keeps its first message: one claim per thread
        return "done"

    for n in range(count):
        inbox.accept(f"m-{n}", payload(message_id=f"m-{n}"))
    worker = BotThreads(inbox, bot, DryRunSender(), threads=count, poll_seconds=0.01)
    began = time.monotonic()
    worker.start()
    try:
        wait_until(lambda: len(handling) == count, timeout=10, poll=0.01)
        assert worker.health()["threads"] == f"{count}/{count}"
    finally:
        release.set()
        worker.stop(timeout=5)
    interval = sqlite_runner.START_INTERVAL
    assert interval >= 0.005
    # Thread k claims no sooner than k intervals after the start, and each keeps the
    # one it took: so the k-th claim of all comes no sooner either (a late one only helps).
    for k, claimed in enumerate(sorted(handling)):
        assert claimed - began >= k * interval - 0.001, f"claim {k} at {claimed - began:.3f}"


def test_stop_does_not_wait_for_threads_yet_to_start(inbox: SQLiteInbox, monkeypatch) -> None:
    monkeypatch.setattr(sqlite_runner, "START_INTERVAL", 0.1)
    worker = BotThreads(inbox, Bot(), DryRunSender(), threads=60)  # the last starts after 5.9 s
    worker.start()
    began = time.monotonic()
    worker.stop(timeout=10)
    assert time.monotonic() - began < 2
    assert worker._threads == []  # each ended, none left sleeping


def test_storage_errors_never_end_a_bot_thread(inbox: SQLiteInbox, monkeypatch) -> None:
    """A full disk raised a plain sqlite3 error out of claim() and killed every thread."""
    import sqlite3

    real_claim, failures = inbox.claim, [3]

    def full_disk(lease_seconds: float):
        if failures[0]:
            failures[0] -= 1
            raise sqlite3.OperationalError("database or disk is full")
        return real_claim(lease_seconds)

    monkeypatch.setattr(inbox, "claim", full_disk)
    threads = BotThreads(inbox, Bot(), DryRunSender(), threads=1, poll_seconds=0.01)
    threads.start()
    try:
        deadline = time.monotonic() + 5
        while failures[0] and time.monotonic() < deadline:
            time.sleep(0.01)
        inbox.accept("m-1", payload())  # the disk has room again
        while inbox.status("m-1").state != "done" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert inbox.status("m-1").state == "done"
        assert threads.health() == {"ok": True, "threads": "1/1"}
    finally:
        threads.stop(timeout=5)


def test_health_tells_when_the_threads_cannot_reach_the_inbox(tmp_path: Path) -> None:
    blocker = tmp_path / "blocked"
    blocker.write_text("a file where the inbox's folder should be")
    threads = BotThreads(SQLiteInbox(blocker / "inbox.sqlite3"), Bot(), DryRunSender(), threads=1)
    threads.start()
    try:
        deadline = time.monotonic() + 5
        while threads.health()["ok"] and time.monotonic() < deadline:
            time.sleep(0.01)
        health = threads.health()
        assert health["ok"] is False and health["threads"] == "1/1"
        assert "NotADirectoryError" in health["error"] or "OperationalError" in health["error"]
    finally:
        threads.stop(timeout=5)


def test_a_full_disk_during_a_claim_is_inbox_unavailable(inbox: SQLiteInbox) -> None:
    """SQLite's page limit stands in for a full disk (the same SQLITE_FULL error)."""
    for n in range(400):  # small rows, packed tight: a claim's token needs a new page
        inbox.accept(f"m-{n}", payload(message_id=f"m-{n}", text="x"), conversation=f"c-{n}")
    pages = inbox._db().execute("PRAGMA page_count").fetchone()[0]
    inbox._db().execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(InboxUnavailable, match="database or disk is full"):
        for _ in range(20):
            inbox.claim(lease_seconds=60)
    assert inbox.claim(lease_seconds=60) is not None  # a fresh connection: room again


@pytest.mark.parametrize(
    "removed", [["inbox.sqlite3"], ["inbox.sqlite3", "-wal", "-shm"], ["-wal"]]
)
def test_inbox_files_deleted_while_open_are_noticed_and_reopened(
    inbox: SQLiteInbox, removed: list[str]
) -> None:
    assert inbox.accept("m-1", payload(message_id="m-1"))
    for suffix in removed:
        path = inbox.path if suffix == "inbox.sqlite3" else Path(f"{inbox.path}{suffix}")
        path.unlink(missing_ok=True)
    # Never acknowledged into a file about to vanish: 503, and the inbox reopens.
    with pytest.raises(InboxUnavailable, match="was removed or replaced while open"):
        inbox.accept("m-2", payload(message_id="m-2"))
    assert inbox.accept("m-2", payload(message_id="m-2"))
    assert inbox.status("m-2").state == "pending"
    inbox.ping()


def test_the_inbox_is_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        inbox = SQLiteInbox(tmp_path / "instance" / "inbox.sqlite3")
        inbox.accept("m-1", payload())
    finally:
        os.umask(old)
    assert (tmp_path / "instance").stat().st_mode & 0o777 == 0o700
    files = sorted(p.name for p in (tmp_path / "instance").iterdir())
    assert files == ["inbox.sqlite3", "inbox.sqlite3-shm", "inbox.sqlite3-wal"]
    assert {(tmp_path / "instance" / f).stat().st_mode & 0o777 for f in files} == {0o600}
