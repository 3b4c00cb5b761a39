"""The Redis inbox: several machines share one inbox; RQ workers run the bot.

Accepting a delivery is one MULTI/EXEC transaction: the dedupe key (SET NX of
the message id, with the retention as its TTL) and the RQ job that will handle
it are written together, or not at all; a WATCH on the key makes a copy accepted
at the same instant elsewhere fail the transaction. So a delivery answered 2xx
always has its job, and a repeat never gets a second one.

The jobs run in `flask spectrum worker` processes (`make worker`; RQ workers of
the class `BotWorker` below), one message at a time each, with `handling.py`
doing the work. Progress (the bot's replies, each
receipt) is kept in the job's meta, so a retry carries on where the last
attempt stopped. A job whose worker died is retried by RQ once its heartbeat
runs out; one that keeps failing ends in RQ's failed registry: parked.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import logging
import os
from collections.abc import Iterator
from typing import Any

import click
import redis
from flask import current_app
from flask.cli import with_appcontext
from rq import Queue, Retry, SimpleWorker, get_current_job
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry

from .config import Settings
from .dispatch import Bot
from .handling import Replies, backoff_seconds, describe, handle_message
from .inbox import InboxUnavailable, Status
from .replies import Replier, choose_replier

log = logging.getLogger(__name__)

QUEUE = "spectrum"
STATES = {
    JobStatus.QUEUED: "pending",
    JobStatus.SCHEDULED: "pending",
    JobStatus.DEFERRED: "pending",
    JobStatus.STARTED: "working",
    JobStatus.FINISHED: "done",
    JobStatus.FAILED: "failed",
}


@contextlib.contextmanager
def unavailable_on_error() -> Iterator[None]:
    """Redis down or unreachable: the caller's InboxUnavailable (503, one-line errors)."""
    try:
        yield
    except redis.RedisError as exc:
        raise InboxUnavailable(f"{type(exc).__name__}: {exc}") from exc


def job_id(message_id: str) -> str:
    # RQ job ids allow [A-Za-z0-9_-] only; message ids may hold anything.
    return "msg_" + hashlib.sha256(message_id.encode()).hexdigest()[:40]


class RedisInbox:
    def __init__(
        self,
        url: str,
        *,
        max_attempts: int = 5,
        retention_seconds: int = 3 * 24 * 3600,
        job_timeout: int = 60,
        retry_intervals: list[int] | None = None,
    ) -> None:
        self.url = url
        self.connection = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
        self.queue = Queue(QUEUE, connection=self.connection)
        self.max_attempts = max_attempts
        self.retention_seconds = retention_seconds
        self.job_timeout = job_timeout
        # RQ needs its scheduler (`rq worker --with-scheduler`) for delayed retries.
        self.retry_intervals = retry_intervals or [
            int(backoff_seconds(n)) for n in range(1, max_attempts)
        ]

    def accept(self, message_id: str, payload: str, webhook_id: str | None = None) -> bool:
        """Store a delivery and its job; False if this message id was already accepted."""
        seen = f"spectrum:seen:{job_id(message_id)}"
        with unavailable_on_error(), self.connection.pipeline() as pipe:
            try:
                pipe.watch(seen)
                if pipe.exists(seen):
                    return False
                pipe.multi()
                pipe.set(seen, message_id, nx=True, ex=self.retention_seconds)
                self.queue.enqueue_call(
                    run_job,
                    args=(message_id, payload),
                    job_id=job_id(message_id),
                    timeout=self.job_timeout,
                    result_ttl=self.retention_seconds,
                    failure_ttl=self.retention_seconds,
                    retry=self._retry(),
                    meta={"webhook_id": webhook_id},
                    pipeline=pipe,
                )
                pipe.execute()
            except redis.WatchError:
                return False  # the same message, accepted by another request just now
        return True

    def _retry(self) -> Retry | None:
        if self.max_attempts <= 1:
            return None
        return Retry(max=self.max_attempts - 1, interval=self.retry_intervals)

    def status(self, message_id: str) -> Status | None:
        with unavailable_on_error():
            job = self._job(message_id)
            return None if job is None else self._status(message_id, job)

    def _job(self, message_id: str) -> Job | None:
        try:
            return Job.fetch(job_id(message_id), connection=self.connection)
        except NoSuchJobError:
            return None

    def _status(self, message_id: str, job: Job) -> Status:
        state = STATES.get(job.get_status(), "pending")
        if state == "done":
            outcome = job.return_value()
        elif state == "failed" or job.meta.get("error"):
            outcome = {"error": job.meta.get("error", "failed")}
        else:
            outcome = None
        attempts = job.meta.get("attempts", 0)
        received = job.enqueued_at.timestamp() if job.enqueued_at else None
        return Status(message_id, state, attempts, outcome, received)

    def parked(self, limit: int = 100) -> list[Status]:
        registry = FailedJobRegistry(queue=self.queue)
        parked = []
        with unavailable_on_error():
            for jid in registry.get_job_ids(0, limit - 1):
                job = Job.fetch(jid, connection=self.connection)
                parked.append(self._status(job.args[0], job))
        return sorted(parked, key=lambda s: s.received_at or 0)

    def replay(self, message_id: str) -> bool:
        """Put a parked message back in line with fresh attempts; False if it is not parked."""
        with unavailable_on_error():
            job = self._job(message_id)
            if job is None or job.get_status() != JobStatus.FAILED:
                return False
            job.retries_left = self.max_attempts - 1 if self.max_attempts > 1 else None
            job.meta["attempts"] = 0
            job.save()
            try:
                FailedJobRegistry(queue=self.queue).requeue(job)
            except InvalidJobOperation:  # replayed by someone else just now
                return False
            return True

    def purge(self, older_than: float) -> int:
        return 0  # every key carries the retention as its TTL: Redis forgets them itself

    def ping(self) -> None:
        with unavailable_on_error():
            self.connection.ping()


# -- the job, run by `rq worker` -------------------------------------------------------

_runtime: dict[str, Any] = {}


@contextlib.contextmanager
def using(bot: Bot, replier: Replier) -> Iterator[None]:
    """Run jobs in this process with this bot and replier (tests); else built from env."""
    _runtime.update(bot=bot, replier=replier)
    try:
        yield
    finally:
        _runtime.clear()


def _bot_and_replier() -> tuple[Bot, Replier]:
    if not _runtime:  # a plain `rq worker`: build them from the environment, once
        prepare(Settings.from_env())
    return _runtime["bot"], _runtime["replier"]


def prepare(settings: Settings) -> None:
    """The bot and the replier this worker process uses for every job."""
    from .bot import bot

    replier, why = choose_replier(settings)
    log.info("rq worker pid=%d replies=%s (%s)", os.getpid(), replier.mode, why)
    atexit.register(replier.close)
    try:
        # Before the first job, so starting Node and the SDK does not eat into its timeout.
        replier.warm_up()
    except Exception as exc:
        log.warning("replies not ready yet, each job will try again: %s", exc)
    _runtime.update(bot=bot, replier=replier)


def run_job(message_id: str, payload: str) -> dict[str, Any]:
    """The RQ job for one accepted message."""
    job = get_current_job()
    assert job is not None
    job.meta["attempts"] = job.meta.get("attempts", 0) + 1
    job.meta.pop("error", None)
    job.save_meta()
    bot, replier = _bot_and_replier()

    def save(replies: Replies) -> None:
        job.meta["replies"] = replies
        job.save_meta()

    try:
        return handle_message(payload, job.meta.get("replies"), bot, replier, save)
    except Exception as exc:
        job.meta["error"] = describe(exc)
        job.save_meta()
        log.warning(
            "attempt %d failed message_id=%s error=%s",
            job.meta["attempts"],
            message_id,
            describe(exc),
        )
        raise


class BotWorker(SimpleWorker):
    """An RQ worker that runs jobs in its own process, keeping the reply bridge alive.

    RQ's default worker forks per job, which would start a Node bridge (and talk
    to the cloud) for every message. A job's heartbeat lasts its timeout plus a
    short margin, instead of RQ's fixed extra minute, so a job whose worker died
    is retried soon after.
    """

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        return int(job.timeout or 60) + 5

    @property
    def dequeue_timeout(self) -> int:
        # RQ's checks for dead workers' jobs (and for a scheduler to take over) run
        # between waits for the queue, and an idle worker waits worker_ttl - 15 s
        # (405 s). Waking every maintenance interval keeps those checks on time.
        return max(1, min(self.worker_ttl - 15, int(self.maintenance_interval)))


@click.command("worker")
@click.option(
    "--maintenance-interval",
    type=int,
    default=30,
    show_default=True,
    help="Seconds between RQ's checks for jobs whose worker died.",
)
@click.option("--burst", is_flag=True, help="Stop once the queue is empty.")
@with_appcontext
def worker_command(maintenance_interval: int, burst: bool) -> None:
    """Run the bot on queued messages (Redis inbox); start as many as you need."""
    inbox = current_app.extensions["spectrum"].inbox
    if not isinstance(inbox, RedisInbox):
        raise click.ClickException("REDIS_URL is not set: the SQLite inbox runs in the app itself.")
    try:
        inbox.ping()
    except InboxUnavailable as exc:
        raise click.ClickException(f"cannot reach Redis at {inbox.url}: {exc}") from None
    prepare(current_app.extensions["spectrum"].settings)
    worker = BotWorker(
        [inbox.queue], connection=inbox.connection, maintenance_interval=maintenance_interval
    )
    # The scheduler puts retries back in the queue after their backoff.
    worker.work(burst=burst, with_scheduler=True, logging_level="WARNING")
