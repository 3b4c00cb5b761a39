"""The Redis inbox's runner: RQ workers that run the bot on queued messages.

`flask spectrum worker` (`make worker`) starts one `BotWorker`. It runs jobs in
its own process, one at a time, with one bot and one sender (and so one reply
bridge) kept for all of them. Each job is `run_job`: `handling.py` does the
work, and the job's meta records its progress (the bot's replies, each
receipt), so a retry carries on where the last attempt stopped.
"""

from __future__ import annotations

import atexit
import logging
import os
import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from rq import SimpleWorker, get_current_job
from rq.job import Job

from ..botkit import Bot
from ..config import Settings
from ..handling import StoredReplies, Tools, handle_message
from ..metrics import HANDLED, HANDLING_SECONDS
from ..sending import Sender, warm_up
from ..state import Changes, Entry
from .contract import DependencyDown, Unsendable, describe
from .redis_store import RedisInbox

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobTools:
    """What every job run by one worker uses."""

    tools: Tools
    store: RedisInbox  # where state is read, and progress recorded

    @classmethod
    def from_settings(cls, settings: Settings, store: RedisInbox, bot: Bot) -> JobTools:
        tools = Tools.from_settings(settings, bot)
        started = {"pid": os.getpid(), "replies": tools.sender.mode}
        if tools.sender_reason:
            started["why"] = tools.sender_reason
        log.info("rq worker started", extra=started)
        return cls(tools, store)

    @property
    def sender(self) -> Sender:
        return self.tools.sender


class JobRecorder:
    """Handling's progress, recorded in the job's meta (see handling.Recorder)."""

    def __init__(self, store: RedisInbox, job: Job) -> None:
        self.store, self.job = store, job

    def save(self, replies: StoredReplies, changes: Changes | None) -> None:
        self.job.meta["replies"] = replies
        self.store.save_progress(self.job, changes)

    def read_state(self, scope: str, name: str) -> Entry | None:
        return self.store.read_state(scope, name)

    def schedule(self, message_id: str, payload: str, at: float) -> bool:
        return self.store.accept(message_id, payload, not_before=at)


# Set by the BotWorker around each job it runs, for `run_job` to find its tools.
_tools: ContextVar[JobTools] = ContextVar("spectrum_job_tools")


def run_job(message_id: str, payload: str) -> dict[str, Any]:
    """The RQ job for one accepted message."""
    job = get_current_job()
    assert job is not None
    tools = _tools.get(None)
    if tools is None:
        raise RuntimeError("this job runs in `flask spectrum worker`, not a plain `rq worker`")
    job.meta["attempts"] = job.meta.get("attempts", 0) + 1
    job.meta.pop("error", None)
    job.save_meta()

    record = JobRecorder(tools.store, job)
    fields = {"message_id": message_id, "attempt": job.meta["attempts"]}
    started = time.perf_counter()
    try:
        outcome = handle_message(
            payload, job.meta.get("replies"), tools.tools, record, job.meta["attempts"]
        )
    except DependencyDown as exc:
        # RQ is about to use up one of the job's retries: give it back, and the attempt.
        job.retries_left = (job.retries_left or 0) + 1
        job.retry_intervals = job.retry_intervals or [int(exc.delay)]
        job.meta["attempts"] -= 1
        job.meta["error"] = describe(exc)
        job.save()
        log.warning("waiting", extra=fields | {"error": describe(exc), "counted": False})
        HANDLED.labels("waiting").inc()
        raise
    except Exception as exc:
        if isinstance(exc, Unsendable):
            job.retries_left = 0  # retrying cannot help: park it now
        job.meta["error"] = describe(exc)
        job.save_meta()
        parked = not job.retries_left
        log.log(
            logging.ERROR if parked else logging.WARNING,
            "parked" if parked else "retrying",
            extra=fields | {"error": describe(exc)},
        )
        HANDLED.labels("parked" if parked else "retried").inc()
        raise
    finally:
        HANDLING_SECONDS.observe(time.perf_counter() - started)
    HANDLED.labels("done").inc()
    return outcome


class BotWorker(SimpleWorker):
    """An RQ worker that runs jobs in its own process, keeping the reply bridge alive.

    RQ's default worker forks per job, which would start a Node bridge (and talk
    to the cloud) for every message. A job's heartbeat lasts its timeout plus a
    short margin, instead of RQ's fixed extra minute, so a job whose worker died
    is retried soon after.
    """

    def __init__(self, *args: Any, tools: JobTools, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tools = tools

    def execute_job(self, job: Job, queue: Any) -> Any:
        token = _tools.set(self.tools)
        try:
            return super().execute_job(job, queue)
        finally:
            _tools.reset(token)

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        return int(job.timeout or 60) + 5

    @property
    def dequeue_timeout(self) -> int:
        # RQ's checks for dead workers' jobs (and for a scheduler to take over) run
        # between waits for the queue, and an idle worker waits worker_ttl - 15 s
        # (405 s). Waking every maintenance interval keeps those checks on time.
        return max(1, min(self.worker_ttl - 15, int(self.maintenance_interval)))


def work(inbox: RedisInbox, tools: JobTools, *, maintenance_interval: int, burst: bool) -> None:
    """Run one RQ worker on the inbox's queue until stopped (or, in a burst, until empty)."""
    atexit.register(tools.sender.close)
    tools.tools.files.purge(older_than=time.time() - inbox.retention_seconds)
    # Before the first job, so starting Node and the SDK does not eat into its timeout.
    warm_up(tools.sender)
    worker = BotWorker(
        [inbox.queue],
        connection=inbox.connection,
        maintenance_interval=maintenance_interval,
        tools=tools,
    )
    # The scheduler puts retries back in the queue after their backoff.
    worker.work(burst=burst, with_scheduler=True, logging_level="WARNING")
