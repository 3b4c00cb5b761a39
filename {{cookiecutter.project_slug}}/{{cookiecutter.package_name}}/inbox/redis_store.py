"""The Redis inbox: several machines share one inbox, RQ workers run the bot.

Accepting a delivery is one MULTI/EXEC transaction: the dedupe key (SET NX of
the message id, with the retention as its TTL) and the RQ job that will handle
it are written together, or not at all; a WATCH on the key makes a copy accepted
at the same instant elsewhere fail the transaction. So a delivery answered 2xx
always has its job, and a repeat never gets a second one.

The jobs run in RQ workers (`redis_runner.py`). A job's progress lives in its
meta; a job whose worker died is retried by RQ, and one that keeps failing ends
in RQ's failed registry: parked.

Messages of one conversation are handled in order with RQ's job dependencies:
each job depends on the previous job of its conversation (noted under
`spectrum:last:<conversation>` in the same transaction), so RQ queues it only
once that one has finished, or has failed for good (`allow_failure`: a parked
message does not hold its conversation up). The conversations' state lives in
`spectrum:state:*` keys, written in one MULTI/EXEC with the job's progress.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from typing import Any

import redis
from rq import Queue, Retry
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Dependency, Job, JobStatus
from rq.registry import FailedJobRegistry

from ..state import Changes, Entry, StateConflict
from .contract import InboxUnavailable, Status, backoff_seconds, storable

QUEUE = "spectrum"
# Named rather than imported: the web process never loads the bot to enqueue a job.
JOB_FUNCTION = f"{__package__}.redis_runner.run_job"
STATES = {
    JobStatus.QUEUED: "pending",
    JobStatus.SCHEDULED: "pending",
    JobStatus.DEFERRED: "pending",
    JobStatus.STARTED: "working",
    JobStatus.FINISHED: "done",
    JobStatus.FAILED: "failed",
}


class CleanedQueue(Queue):
    """RQ's queue, whose cleaning lock a killed worker holds for seconds, not 15 minutes.

    One RQ worker at a time cleans a queue's registries, which is what retries
    the job of a worker that died. RQ 3.0 lets that lock expire after 899 s: a
    worker SIGKILLed while cleaning (the crash test hit it now and then) left
    every dead worker's message unhandled for 15 minutes. Cleaning takes
    milliseconds, so 30 s is ample. A cleaning still running at 30 s (Redis
    stalled) lets a second worker take the lock; the first then releases only a
    lock of its own, where RQ's release deleted whoever's it found.
    """

    cleaning_lock_seconds = 30
    _cleaning_token = ""

    def acquire_maintenance_lock(self) -> bool:
        token, key = uuid.uuid4().hex, self.registry_cleaning_key
        if not self.connection.set(key, token, nx=True, ex=self.cleaning_lock_seconds):
            return False
        self._cleaning_token = token
        return True

    def release_maintenance_lock(self) -> None:
        self.connection.eval(_DELETE_IF_HELD, 1, self.registry_cleaning_key, self._cleaning_token)


_DELETE_IF_HELD = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


@contextlib.contextmanager
def unavailable_on_error() -> Iterator[None]:
    """Redis down or unreachable: the caller's InboxUnavailable (503, one-line errors)."""
    try:
        yield
    except redis.RedisError as exc:
        raise InboxUnavailable(f"{type(exc).__name__}: {exc}") from exc


def job_id(message_id: str) -> str:
    # RQ job ids allow [A-Za-z0-9_-] only; message ids may hold anything.
    return "msg_" + _digest(message_id)


def _digest(text: str) -> str:
    return hashlib.sha256(storable(text).encode()).hexdigest()[:40]


def state_key(scope: str, name: str) -> str:
    return "spectrum:state:" + json.dumps([scope, name])  # ASCII: surrogates escaped


class RedisInbox:
    def __init__(
        self,
        url: str,
        *,
        max_attempts: int = 5,
        retention_seconds: int = 3 * 24 * 3600,
        job_timeout: int = 60,
        retry_intervals: list[int] | None = None,
        ordered: bool = True,
    ) -> None:
        self.url = url
        self.connection = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
        self.queue = CleanedQueue(QUEUE, connection=self.connection)
        self.max_attempts = max_attempts
        self.retention_seconds = retention_seconds
        self.job_timeout = job_timeout
        self.ordered = ordered
        # RQ needs its scheduler (`rq worker --with-scheduler`) for delayed retries.
        self.retry_intervals = retry_intervals or [
            int(backoff_seconds(n)) for n in range(1, max_attempts)
        ]

    def accept(
        self,
        message_id: str,
        payload: str,
        webhook_id: str | None = None,
        conversation: str | None = None,
        not_before: float | None = None,
    ) -> bool:
        """Store a delivery and its job; False if this message id was already accepted."""
        seen = f"spectrum:seen:{job_id(message_id)}"
        last = f"spectrum:last:{_digest(conversation or message_id)}"
        with unavailable_on_error(), self.connection.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(seen, last)
                    if pipe.exists(seen):
                        return False
                    previous = pipe.get(last) if self.ordered and conversation else None
                    self._enqueue(pipe, message_id, payload, webhook_id, previous, not_before)
                    pipe.set(seen, storable(message_id), nx=True, ex=self.retention_seconds)
                    pipe.set(last, job_id(message_id), ex=self.retention_seconds)
                    pipe.execute()
                    return True
                except redis.WatchError:
                    # Something this read changed: the same message accepted elsewhere
                    # just now (seen on the next look), or the conversation moved on.
                    continue

    def _enqueue(
        self,
        pipe: redis.client.Pipeline,
        message_id: str,
        payload: str,
        webhook_id: str | None,
        previous: bytes | str | None,  # what redis-py's get() is typed to return
        not_before: float | None,
    ) -> None:
        """Queue the message's job in the transaction (which this starts, as RQ does)."""
        options: dict[str, Any] = {
            "args": (message_id, payload),
            "job_id": job_id(message_id),
            "timeout": self.job_timeout,
            "result_ttl": self.retention_seconds,
            "failure_ttl": self.retention_seconds,
            "retry": self._retry(),
            "meta": {"webhook_id": webhook_id},
        }
        if not_before is not None:  # a message the bot starts later: RQ's scheduler queues it
            job = self.queue.create_job(JOB_FUNCTION, **options)
            pipe.multi()
            when = datetime.datetime.fromtimestamp(not_before, datetime.UTC)
            self.queue.schedule_job(job, when, pipeline=pipe)
            return
        # RQ watches the job this one waits for, then starts the transaction.
        if isinstance(previous, bytes):
            previous = previous.decode()
        depends_on = Dependency([previous], allow_failure=True) if previous else None
        self.queue.enqueue_call(JOB_FUNCTION, depends_on=depends_on, pipeline=pipe, **options)

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

    def read_state(self, scope: str, name: str) -> Entry | None:
        with unavailable_on_error():
            raw = self.connection.get(state_key(scope, name))
        if raw is None:
            return None
        stored = json.loads(raw)
        if "d" not in stored:  # deleted; the key keeps its version a while
            return Entry(None, stored["v"], present=False)
        return Entry(stored["d"], stored["v"], stored.get("e"))

    def save_progress(self, job: Job, changes: Changes | None) -> None:
        """The job's meta (its recorded replies) and the handler's state changes, at once.

        StateConflict if state the handler read has changed since.
        """
        touched = {*changes.read, *changes.written} if changes else set()
        keys = {key: state_key(*key) for key in touched}
        with unavailable_on_error(), self.connection.pipeline() as pipe:
            while True:
                try:
                    if keys:
                        pipe.watch(*keys.values())
                    versions = {key: _version(pipe.get(k)) for key, k in keys.items()}
                    if changes and any(versions[k] != v for k, v in changes.read.items()):
                        raise StateConflict("state changed meanwhile")
                    pipe.multi()
                    for key, written in (changes.written if changes else {}).items():
                        self._write_state(pipe, keys[key], versions[key] + 1, written)
                    pipe.hset(job.key, "meta", job.serializer.dumps(job.meta))
                    pipe.execute()
                    return
                except redis.WatchError:
                    continue  # a state key moved while we looked: look again

    def _write_state(
        self,
        pipe: redis.client.Pipeline,
        key: str,
        version: int,
        written: tuple[str, float | None] | None,
    ) -> None:
        if written is None:
            # A deleted key is kept a while, so its version still tells readers it moved.
            pipe.set(key, json.dumps({"v": version}), ex=self.retention_seconds)
            return
        value, expires_at = written
        stored = {"v": version, "e": expires_at, "d": json.loads(value)}
        pipe.set(key, json.dumps(stored, ensure_ascii=False))
        if expires_at is not None:
            pipe.pexpireat(key, int(expires_at * 1000))

    def durability_problem(self) -> str | None:
        """Without append-only persistence a Redis restart loses acknowledged deliveries.

        (Measured: with the default RDB snapshots, a SIGKILLed Redis lost every
        message acknowledged since the last one; with `appendonly yes`, none.)
        """
        with unavailable_on_error():
            try:
                found = self.connection.config_get("appendonly")
            except redis.ResponseError:  # CONFIG renamed or off (managed Redis): cannot tell
                return None
        if found.get("appendonly") == "yes":
            return None
        return (
            f"Redis at {shown_url(self.url)} keeps messages in memory only (appendonly no): a Redis "
            "restart would lose acknowledged deliveries. Turn on AOF (appendonly yes)"
        )

    def ping(self) -> None:
        with unavailable_on_error():
            self.connection.ping()

    def probe_write(self) -> None:
        """A key written: fails on a read-only replica, or a full Redis that refuses writes."""
        with unavailable_on_error():
            self.connection.set("spectrum:probe", time.time(), ex=60)

    def counts(self) -> dict[str, int]:
        queue = self.queue
        with unavailable_on_error():
            waiting = (
                queue.count
                + queue.scheduled_job_registry.count  # retries in their backoff, Later
                + queue.deferred_job_registry.count  # behind an earlier message (order)
            )
            return {
                "pending": waiting,
                "working": queue.started_job_registry.count,
                "parked": queue.failed_job_registry.count,
            }


def shown_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    user = f"{parts.username}:***@" if parts.username else ":***@"
    host = parts.netloc.rsplit("@", 1)[1]
    return urllib.parse.urlunsplit(parts._replace(netloc=user + host))


def _version(raw: bytes | str | None) -> int:
    return int(json.loads(raw)["v"]) if raw else 0
