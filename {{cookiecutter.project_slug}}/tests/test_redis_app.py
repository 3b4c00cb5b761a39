"""The app on the Redis inbox: the webhook enqueues, `flask spectrum worker` runs the bot."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import time

from conftest import SECRET, WEBHOOK_PATH, echo_bot, listening, redis_arguments, unused_port

from {{ cookiecutter.package_name }} import create_app
from {{ cookiecutter.package_name }}.config import Settings
from {{ cookiecutter.package_name }}.inbox.redis_store import RedisInbox, shown_url
from {{ cookiecutter.package_name }}.runtime import runtime
from {{ cookiecutter.package_name }}.samples import encode, text_delivery
from {{ cookiecutter.package_name }}.verify import signed_headers


def post(app, message_id: str, text: str = "hello"):
    body = encode(text_delivery(text, message_id=message_id))
    headers = signed_headers(SECRET, int(time.time()), body)
    return app.test_client().post(WEBHOOK_PATH, data=body, headers=headers)


def test_webhook_enqueues_and_the_worker_command_runs_the_bot(
    settings: Settings, redis_server: str
) -> None:
    app = create_app(dataclasses.replace(settings, redis_url=redis_server), bot=echo_bot())
    inbox = runtime(app).inbox
    assert isinstance(inbox, RedisInbox)
    assert runtime(app).bot_threads is None  # no bot threads in the web process
    inbox.connection.flushdb()

    assert post(app, "m-1").status_code == 202
    assert post(app, "m-1").status_code == 200  # a repeat
    assert inbox.status("m-1").state == "pending"

    result = app.test_cli_runner().invoke(args=["spectrum", "worker", "--burst"])
    assert result.exit_code == 0, result.output
    status = inbox.status("m-1")
    assert status.state == "done"
    assert status.outcome["replies"][0]["content"] == {"type": "text", "text": "You said: hello"}
    assert app.test_client().get("/healthz").status_code == 200


def test_redis_down_means_503_and_a_one_line_worker_error(settings: Settings) -> None:
    app = create_app(
        dataclasses.replace(settings, redis_url=f"redis://127.0.0.1:{unused_port()}/0"),
        bot=echo_bot(),
    )
    response = post(app, "m-1")
    assert (response.status_code, response.json) == (
        503,
        {"error": "inbox unavailable, retry later"},
    )
    assert app.test_client().get("/healthz").status_code == 503
    result = app.test_cli_runner().invoke(args=["spectrum", "worker", "--burst"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: cannot reach Redis at redis://127.0.0.1:")
    assert len(result.output.splitlines()) == 1
    for args in (["parked"], ["replay", "--all"]):
        result = app.test_cli_runner().invoke(args=["spectrum", "inbox", *args])
        assert result.exit_code == 1
        assert result.output.startswith("Error: the inbox is unavailable: ConnectionError")
        assert len(result.output.splitlines()) == 1


def test_a_redis_without_persistence_is_refused_in_one_line(
    settings: Settings, tmp_path, monkeypatch
) -> None:
    """RDB-only Redis lost every acknowledged message when killed: refuse to run on it."""
    port = unused_port()
    server = subprocess.Popen(
        redis_arguments(shutil.which("redis-server"), port, tmp_path, appendonly="no"),
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not listening(port):
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
        url = f"redis://127.0.0.1:{port}/0"
        app = create_app(dataclasses.replace(settings, redis_url=url), bot=echo_bot())
        ready = app.test_client().get("/readyz")
        assert ready.status_code == 503
        assert "appendonly no" in ready.json["checks"]["inbox"]["error"]
        result = app.test_cli_runner().invoke(args=["spectrum", "worker", "--burst"])
        assert result.exit_code == 1
        assert result.output == (
            f"Error: Redis at {url} keeps messages in memory only (appendonly no): a Redis "
            "restart would lose acknowledged deliveries. Turn on AOF (appendonly yes) "
            "(or set SPECTRUM_REDIS_REQUIRE_AOF=0)\n"
        )
        allowed = dataclasses.replace(settings, redis_url=url, redis_require_aof=False)
        app = create_app(allowed, bot=echo_bot())
        result = app.test_cli_runner().invoke(args=["spectrum", "worker", "--burst"])
        assert result.exit_code == 0, result.output
        ready = app.test_client().get("/readyz")
        assert ready.status_code == 200  # told to accept it: a warning, not a failure
        assert "appendonly no" in ready.json["checks"]["inbox"]["warning"]
    finally:
        server.terminate()
        server.wait()


def test_ready_and_metrics_with_redis(settings: Settings, redis_server: str) -> None:
    app = create_app(dataclasses.replace(settings, redis_url=redis_server), bot=echo_bot())
    runtime(app).inbox.connection.flushdb()
    ready = app.test_client().get("/readyz")
    assert ready.status_code == 200, ready.json
    assert ready.json["checks"]["inbox"] == {"ok": True}
    assert ready.json["checks"]["replies"]["where"] == "the bot workers (flask spectrum worker)"
    post(app, "m-1")
    metrics = app.test_client().get("/metrics").get_data(as_text=True)
    assert 'spectrum_inbox_messages{state="pending"} 1.0' in metrics
    app.test_cli_runner().invoke(args=["spectrum", "worker", "--burst"])
    metrics = app.test_client().get("/metrics").get_data(as_text=True)
    assert 'spectrum_inbox_messages{state="pending"} 0.0' in metrics


def test_a_redis_password_is_never_shown() -> None:
    assert (
        shown_url("redis://:hunter2@redis.internal:6379/0") == "redis://:***@redis.internal:6379/0"
    )
    assert shown_url("redis://bot:hunter2@10.0.0.5/1") == "redis://bot:***@10.0.0.5/1"
    assert shown_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


def test_a_worker_killed_while_cleaning_holds_the_retries_up_for_seconds(
    redis_server: str,
) -> None:
    """The lock of the worker that retries dead workers' jobs outlives its holder briefly.

    RQ's own lasts 899 s: a worker killed while holding it stopped those retries
    for 15 minutes.
    """
    inbox = RedisInbox(redis_server)
    inbox.connection.flushdb()
    queue, key = inbox.queue, inbox.queue.registry_cleaning_key
    assert queue.acquire_maintenance_lock()  # and the worker that took it is killed
    assert 0 < inbox.connection.ttl(key) <= 30
    assert not queue.acquire_maintenance_lock()  # no other worker cleans meanwhile

    inbox.connection.expire(key, 1)  # the 30 s, shortened for the test
    time.sleep(1.2)
    assert queue.acquire_maintenance_lock()  # another worker cleans again


def test_a_worker_slower_than_its_cleaning_lock_leaves_the_next_holders_lock_alone(
    redis_server: str,
) -> None:
    inbox = RedisInbox(redis_server)
    inbox.connection.flushdb()
    slow, other = inbox.queue, RedisInbox(redis_server).queue  # two workers' queues
    key = slow.registry_cleaning_key
    assert slow.acquire_maintenance_lock()
    inbox.connection.delete(key)  # its 30 s ran out while it was still cleaning
    assert other.acquire_maintenance_lock()
    slow.release_maintenance_lock()  # done at last: the lock is no longer its own
    assert inbox.connection.exists(key)
    assert not slow.acquire_maintenance_lock()
    other.release_maintenance_lock()
    assert not inbox.connection.exists(key)
    other.connection.close()
