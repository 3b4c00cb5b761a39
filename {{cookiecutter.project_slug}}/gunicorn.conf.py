"""gunicorn settings for production: `gunicorn -c gunicorn.conf.py`.

Everything can be overridden from the environment (PORT, WEB_CONCURRENCY,
GUNICORN_THREADS) or the command line.
"""

import gc
import multiprocessing
import os
import shutil
import sys
import tempfile

# Each worker writes its metrics to this folder and /metrics adds them up
# (metrics.py). Set before anything imports prometheus_client, which reads it
# once; a fresh folder per run, as the last run's processes are gone.
made_metrics_dir = "" if "PROMETHEUS_MULTIPROC_DIR" in os.environ else tempfile.mkdtemp()
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", made_metrics_dir)

from {{ cookiecutter.package_name }} import logs  # noqa: E402
from {{ cookiecutter.package_name }}.config import ConfigError, Settings  # noqa: E402

try:
    settings = Settings.from_env()  # reads .env too: gunicorn itself never does
except ConfigError as exc:
    print(f"Error: {exc.message}", file=sys.stderr)
    sys.exit(1)

# One format (LOG_FORMAT) for gunicorn's own lines and the app's, on stderr.
logconfig_dict = logs.config(settings.log_format, settings.log_level, settings.access_log)

wsgi_app = "{{ cookiecutter.package_name }}:create_app()"
bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
# Threads keep one slow client from holding a whole worker, and deliveries that
# arrive together share one synced commit (inbox/sqlite_store.py). The template's
# bench/peers.py at full load: 0.19x to 0.35x a plain verifier's rate with 8,
# 0.18x to 0.21x with 4. The bot runs in the worker's own background threads.
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", 8))
# A webhook answer takes milliseconds; Spectrum gives up on an attempt after
# 30 s and retries it, so a request still running at 20 s is stuck.
timeout = 20
# On SIGTERM, time for each worker's background threads to finish their message.
graceful_timeout = 30
# Never preload: each worker must open its own inbox connection after the fork.
preload_app = False
# gunicorn >= 25 opens a control socket at one per-user path, which two apps run
# by the same user would fight over; nothing here uses it.
control_socket_disable = True
# A line per request only with GUNICORN_ACCESS_LOG=1 (the webhook logs each delivery).
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'


def on_starting(server):
    """Refuse to start, in one line, when the settings are wrong."""
    from {{ cookiecutter.package_name }} import load_bot
    from {{ cookiecutter.package_name }}.inbox import check_durable, open_inbox
    from {{ cookiecutter.package_name }}.inbox.contract import InboxUnavailable

    try:
        load_bot()  # a broken bot.py: one line now, not a traceback from every worker
        settings.require_signing_secrets()
        check_durable(settings, open_inbox(settings))
    except ConfigError as exc:
        print(f"Error: {exc.message}", file=sys.stderr)
        sys.exit(1)
    except InboxUnavailable as exc:  # down for now: deliveries get 503 until it is back
        print(f"Warning: the inbox is unavailable: {exc}", file=sys.stderr)


def post_worker_init(worker):
    # Before this worker takes its first delivery: Node and the SDK started (see
    # sending.warm_up), and handling of stored messages under way, including any a
    # crashed worker left. (With Redis, `flask spectrum worker` runs the bot.)
    from {{ cookiecutter.package_name }}.runtime import runtime
    from {{ cookiecutter.package_name }}.sending import warm_up

    bot_threads = runtime(worker.wsgi).bot_threads
    if bot_threads is not None:
        # At most half the timeout (worker.timeout): this worker takes no delivery meanwhile.
        warm_up(bot_threads.tools.sender, wait=worker.timeout)
    # What the boot made lives as long as the worker: out of the garbage collector's
    # sight, a full collection no longer pauses every thread for 30 ms.
    gc.collect()
    gc.freeze()
    if bot_threads is not None:
        bot_threads.start()


def worker_exit(server, worker):
    from {{ cookiecutter.package_name }}.runtime import runtime

    app = getattr(worker, "wsgi", None)
    bot_threads = runtime(app).bot_threads if app is not None else None
    if bot_threads is not None:
        bot_threads.stop(timeout=graceful_timeout - 5)


def child_exit(server, worker):
    # Its counters stay in the sums; its live gauges (none yet) would be dropped.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if made_metrics_dir:
        shutil.rmtree(made_metrics_dir, ignore_errors=True)
