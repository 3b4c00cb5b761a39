"""The Redis inbox: several machines share one inbox, RQ workers run the bot.

Accepting a delivery is one MULTI/EXEC transaction: the dedupe key (SET NX of
the message id, with the retention as its TTL) and the RQ job that will handle
it are written together, or not at all; a WATCH on the key makes a copy accepted
at the same instant elsewhere fail the transaction. So a delivery answered 2xx
always has its job, and a repeat never gets a second one.

The jobs run in RQ workers (`redis_runner.py`). A job's progress lives in its
meta; a job whose worker died is retried by RQ, and one that keeps failing ends
in RQ's failed registry: parked.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator

import redis
from rq import Queue, Retry
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry

from .contract import InboxUnavailable, Status, backoff_seconds

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
                    JOB_FUNCTION,
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
