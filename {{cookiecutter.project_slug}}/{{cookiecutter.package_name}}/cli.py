"""`flask spectrum ...`: commands for working with the webhook from a terminal.

They sign with the same code the webhook verifies with (`verify.sign`), using the
first secret in the signing-secret environment variable.
"""

from __future__ import annotations

import importlib.util
import json
import math
import shlex
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, BinaryIO

import click
from flask.cli import AppGroup, with_appcontext

from .config import SIGNING_SECRET_ENV, WEBHOOK_PATH
from .inbox.contract import Inbox, InboxUnavailable, storable
from .management import APIError
from .outbox import Outbox
from .registrations import Registrations, management_api, require_https
from .replies import File, Files
from .runtime import runtime
from .samples import KINDS, content, delivery, encode
from .verify import signed_headers

spectrum = AppGroup("spectrum", help="Work with Spectrum deliveries.")


def app_url(url: str | None) -> str:
    """`--url`, or the webhook of the app running here on $PORT."""
    return url or f"http://127.0.0.1:{runtime().settings.port}{WEBHOOK_PATH}"


def http_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        try:
            parts = urllib.parse.urlsplit(value)
            usable = parts.scheme in ("http", "https") and parts.hostname and parts.port != 0
        except ValueError:  # "http://[::1/x", a port out of range ...
            usable = False
        if not usable:
            example = f"http://127.0.0.1:8000{WEBHOOK_PATH}"
            raise click.BadParameter(f"{value!r} is not an http(s) URL, e.g. {example}")
    return value


class Seconds(click.ParamType):  # type: ignore[type-arg]
    """A finite, non-negative number of seconds (float() also takes "nan" and "inf")."""

    name = "seconds"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        try:
            seconds = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        if not math.isfinite(seconds) or seconds < 0:
            self.fail(f"{value!r} is not a number of seconds (0 or more)", param, ctx)
        return seconds


url_option = click.option(
    "--url", callback=http_url, show_default="http://127.0.0.1:$PORT" + WEBHOOK_PATH
)


def post(
    url: str, body: bytes, headers: dict[str, str], timeout: float, wait_for_app: float = 0
) -> tuple[int, str]:
    """POST and return (status, body text); an unreachable app is a one-line error.

    With `wait_for_app`, a refused connection is retried for that many seconds,
    for scripts that have just started the server.
    """
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    give_up = time.monotonic() + wait_for_app
    while True:
        try:
            with urllib.request.urlopen(req, timeout=timeout) as response:
                return response.status, response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode("utf-8", "replace")
        except (urllib.error.URLError, OSError) as exc:
            if time.monotonic() < give_up:
                time.sleep(0.2)
                continue
            reason = getattr(exc, "reason", exc)
            raise click.ClickException(
                f"cannot reach {url} ({reason}): start the app first (`make dev` or `make run`) or pass --url."
            ) from None


@spectrum.command("send-test")
@click.argument("text", required=False, default="")
@click.option(
    "--kind",
    type=click.Choice(KINDS),
    default="text",
    show_default=True,
    help="What to deliver; TEXT is its text (a reply's, a contact's name, a link's URL).",
)
@click.option(
    "--file",
    "file",
    type=click.Path(exists=True, dir_okay=False),
    help="The attachment or voice note's file (only its name, type and size are sent).",
)
@click.option("--target", help="The message a reaction or reply points at (an id).")
@click.option("--emoji", default="❤️", show_default=True, help="A reaction's emoji.")
@click.option(
    "--json",
    "json_file",
    type=click.File("rb"),
    help="Deliver this file instead: a whole delivery, or a content object to wrap.",
)
@click.option("--group", is_flag=True, help="In a group chat, not a direct one.")
@click.option("--sender", default="+15550100", show_default=True)
@click.option("--platform", default="iMessage", show_default=True)
@click.option("--space-id", default=None, help="The conversation's id (default: the sender's).")
@url_option
@click.option("--wait/--no-wait", default=True, help="Wait for the bot and show what it did.")
@click.option(
    "--timeout", type=Seconds(), default=10.0, show_default=True, help="Seconds to wait per step."
)
@click.option(
    "--wait-for-app", type=Seconds(), default=0.0, help="Seconds to retry while the app starts."
)
def send_test(
    text: str,
    kind: str,
    file: str | None,
    target: str | None,
    emoji: str,
    json_file: BinaryIO | None,
    group: bool,
    sender: str,
    platform: str,
    space_id: str | None,
    url: str | None,
    wait: bool,
    timeout: float,
    wait_for_app: float,
) -> None:
    """Sign a realistic delivery (a text, or any --kind) and POST it to a running app.

    It then follows the message through the inbox and prints what the bot did.
    """
    current = runtime()
    if json_file is not None and (text or kind != "text"):
        raise click.UsageError("--json sends the file as it is: give no TEXT or --kind with it")
    if json_file is not None:
        payload = from_json(json_file, sender, platform, space_id, group)
    else:
        if kind == "text" and not text:
            raise click.UsageError("give the TEXT to send (or another --kind)")
        made = content(kind, text, target=target, file=file, emoji=emoji)
        chat = "group" if group else "direct"
        payload = delivery(made, space_id=space_id, sender_id=sender, platform=platform, chat=chat)
    message_id = payload["message"]["id"] if isinstance(payload.get("message"), dict) else None
    body = encode(payload)
    secret = current.settings.require_signing_secrets()[0]
    headers = signed_headers(secret, int(time.time()), body)
    status, answer = post(app_url(url), body, headers, timeout, wait_for_app)
    click.echo(f"{status} {answer.strip()}")
    if status >= 300:
        sys.exit(1)
    if wait and status == 202 and isinstance(message_id, str):
        # With Redis the bot runs in `flask spectrum worker` processes, not in the app.
        who = (
            "the app's worker"
            if current.bot_threads is not None
            else "a bot worker (`make worker`)"
        )
        show_outcome(current.inbox, message_id, timeout, current.settings.max_attempts, who)


def from_json(
    source: BinaryIO, sender: str, platform: str, space_id: str | None, group: bool
) -> dict[str, Any]:
    """A delivery from a JSON file: sent as is, or (a content object) wrapped in one."""
    try:
        found = json.loads(source.read())
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--json") from None
    if not isinstance(found, dict):
        raise click.BadParameter("a JSON object, please", param_hint="--json")
    if "event" in found:
        return found
    chat = "group" if group else "direct"
    return delivery(found, space_id=space_id, sender_id=sender, platform=platform, chat=chat)


def show_outcome(
    inbox: Inbox, message_id: str, timeout: float, max_attempts: int, who: str = "the app's worker"
) -> None:
    """Follow the message through the shared inbox until the bot is done with it.

    A failed attempt is said at once, with the bot's error and what happens next:
    a failing bot should not look like a dead worker.
    """
    deadline = time.monotonic() + timeout
    state = "pending"
    while time.monotonic() < deadline:
        status = inbox.status(message_id)
        if status is None:
            click.echo("(the app stores its inbox elsewhere: see its log for what the bot did)")
            return
        error = (status.outcome or {}).get("error")
        if status.state == "done":
            for line in outcome_lines(status.outcome or {}):
                click.echo(line)
            return
        if status.state == "failed":
            click.echo(f"bot failed, parked after {status.attempts} attempt(s): {error}")
            click.echo(f"  flask spectrum inbox replay {shlex.quote(message_id)}  # once fixed")
            sys.exit(1)
        if error and status.state == "pending":
            click.echo(
                f"bot failed on attempt {status.attempts} of {max_attempts}: {error}\n"
                "  it will be retried with backoff; the app's log has the traceback"
            )
            sys.exit(1)
        state = status.state
        time.sleep(0.1)
    click.echo(f"still {state} after {timeout:g}s: is {who} running?")
    sys.exit(1)


def outcome_lines(outcome: dict[str, Any]) -> list[str]:
    """What the bot sent, a line per reply."""
    replies = outcome.get("replies", [])
    if not replies:
        return ["bot handled it and sent no reply"]
    return [
        f"bot replied ({(reply['receipt'] or {}).get('mode', 'sent')}): {describe_reply(reply['content'])}"
        for reply in replies
    ]


def describe_reply(content: dict[str, Any]) -> str:
    """A stored reply as a person reads it."""
    kind = content.get("type")
    if kind == "text":
        return str(content["text"])
    if kind == "reaction":
        return f"{content['emoji']} on {content['target']}"
    if kind == "markdown":
        return f"(markdown) {content['markdown']}"
    if kind == "reply":
        return f"(in the thread of {content['target']}) {describe_reply(content['content'])}"
    if kind in ("file", "voice"):
        return f"({kind}) {content['name']}, {content['mimeType']}"
    if kind == "later":
        when = time.strftime("%H:%M:%S", time.localtime(content["at"]))
        return f"(at {when}) " + "; ".join(describe_reply(c) for c in content["replies"])
    return json.dumps(content, ensure_ascii=False)


@spectrum.command("sign")
@click.argument("body_file", type=click.File("rb"), default="-")
@click.option(
    "--timestamp", type=click.IntRange(min=0), default=None, help="Epoch seconds (default: now)."
)
@url_option
def sign_command(body_file: BinaryIO, timestamp: int | None, url: str | None) -> None:
    """Print the headers for a body (file or stdin), and a curl command that sends it."""
    body = body_file.read()
    secret = runtime().settings.require_signing_secrets()[0]
    headers = signed_headers(secret, int(time.time()) if timestamp is None else timestamp, body)
    for name, value in headers.items():
        click.echo(f"{name}: {value}")
    flags = " ".join(f"-H {shlex.quote(f'{n}: {v}')}" for n, v in headers.items())
    name = getattr(body_file, "name", "<stdin>")
    source = "@-" if name == "<stdin>" else f"@{shlex.quote(name)}"
    target = shlex.quote(app_url(url))
    click.echo(f"\ncurl -sS -X POST {flags} --data-binary {source} {target}", err=True)


@spectrum.command("send")
@click.argument("space_id")
@click.argument("text", required=False)
@click.option(
    "--file",
    "paths",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A file or image to send (several may be given).",
)
@click.option("--platform", default="iMessage", show_default=True)
@click.option("--phone", default=None, help="The iMessage line to send from, if several.")
@click.option("--in", "delay", type=Seconds(), default=0.0, help="Send after this many seconds.")
@click.option("--key", default=None, help="Send once, however often this runs with the key.")
def send_command(
    space_id: str,
    text: str | None,
    paths: tuple[Path, ...],
    platform: str,
    phone: str | None,
    delay: float,
    key: str | None,
) -> None:
    """Send a message the bot starts, to SPACE_ID: stored, then sent by the app's runner."""
    if not (text or paths):
        raise click.UsageError("give a TEXT to send, a --file, or both")
    current = runtime()
    outbox = Outbox(current.inbox, Files(current.settings.instance_dir / "files"))
    replies = ([text] if text else []) + [File(path) for path in paths]
    try:
        message_id = outbox.send(
            space_id, *replies, platform=platform, phone=phone, delay=delay, key=key
        )
    except InboxUnavailable as exc:
        raise click.ClickException(f"the inbox is unavailable: {exc}") from None
    except TypeError as exc:  # a file of no known type
        raise click.ClickException(str(exc)) from None
    when = f" in {delay:g}s" if delay else ""
    click.echo(f"stored {storable(message_id)}: the app's runner sends it{when}")


webhooks = AppGroup("webhooks", help="Register, list and delete this project's Spectrum webhooks.")
spectrum.add_command(webhooks)


def registrations() -> Registrations:
    return Registrations.from_settings(runtime().settings)


@webhooks.command("list")
def list_webhooks() -> None:
    """List the webhooks registered for this project (their secrets are never shown again)."""
    try:
        found = management_api(runtime().settings).list()
    except APIError as exc:
        raise click.ClickException(str(exc)) from None
    if not found:
        click.echo("no webhooks registered")
    for webhook in found:
        click.echo(f"{webhook.id}  {webhook.url}  {webhook.created_at or ''}".rstrip())


@webhooks.command("register")
@click.argument("url")
def register_webhook(url: str) -> None:
    """Register URL and add its signing secret to .env (kept alongside the old ones)."""
    require_https(url)
    try:
        webhook = registrations().register(management_api(runtime().settings), url)
    except APIError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"registered {webhook.id}  {webhook.url}")
    click.echo(f"its signing secret is now first in {SIGNING_SECRET_ENV} in .env: restart the app")
    if urllib.parse.urlsplit(url).path != WEBHOOK_PATH:
        click.echo(f"note: this app receives deliveries at {WEBHOOK_PATH}, not at that path")


@webhooks.command("delete")
@click.argument("webhook_id")
def delete_webhook(webhook_id: str) -> None:
    """Delete a webhook, and drop its secret from .env if it was registered from here."""
    try:
        dropped = registrations().delete(management_api(runtime().settings), webhook_id)
    except APIError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"deleted {webhook_id}")
    if dropped:
        click.echo(f"its secret is out of {SIGNING_SECRET_ENV} in .env from the next restart")
    else:
        click.echo(
            f"if {SIGNING_SECRET_ENV} holds its secret, remove it once no delivery signed "
            "with it can arrive (this project did not register it, so cannot tell which)"
        )


@webhooks.command("rotate")
@click.argument("webhook_id")
def rotate_webhook(webhook_id: str) -> None:
    """Start a secret rotation: register the same endpoint again beside WEBHOOK_ID.

    Spectrum has no rotate endpoint and refuses the same URL twice, so the new
    registration gets the URL with a version query (?v=2, ?v=3 ...).
    """
    api = management_api(runtime().settings)
    try:
        old = next((w for w in api.list() if w.id == webhook_id), None)
        if old is None:
            raise click.ClickException(
                f"no webhook {webhook_id} in this project: `flask spectrum webhooks list` shows the ids."
            )
        webhook = registrations().register(api, next_version(old.url))
    except APIError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"1. registered {webhook.id}  {webhook.url}")
    click.echo(f"   {SIGNING_SECRET_ENV} in .env now holds the new secret and the old one")
    click.echo(
        "2. restart or deploy the app; until step 3 each message arrives twice, handled once"
    )
    click.echo(f"3. flask --app {__package__} spectrum webhooks delete {webhook_id}")


def next_version(url: str) -> str:
    """The same endpoint under another URL: ?v=2, or the next v if there is one."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query)
    version = next((int(v) for k, v in query if k == "v" and v.isdecimal()), 1)
    query = [(k, v) for k, v in query if k != "v"] + [("v", str(version + 1))]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


inbox_group = AppGroup("inbox", help="Look at and replay the messages the bot gave up on.")
spectrum.add_command(inbox_group)


@inbox_group.command("parked")
@click.option("--limit", type=click.IntRange(1, 1_000_000), default=100, show_default=True)
def list_parked(limit: int) -> None:
    """List parked messages (failed every attempt), oldest first, with their last error."""
    try:
        parked = runtime().inbox.parked(limit)
    except InboxUnavailable as exc:
        raise click.ClickException(f"the inbox is unavailable: {exc}") from None
    if not parked:
        click.echo("no parked messages")
    for status in parked:
        received = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(status.received_at or 0))
        error = (status.outcome or {}).get("error", "")
        click.echo(
            f"{storable(status.message_id)}  {received}  attempts={status.attempts}  {error}"
        )


@inbox_group.command("replay")
@click.argument("message_ids", nargs=-1)
@click.option("--all", "replay_all", is_flag=True, help="Replay every parked message.")
def replay_parked(message_ids: tuple[str, ...], replay_all: bool) -> None:
    """Put parked messages back in line, with fresh attempts.

    Replies the bot already got confirmed are not sent again. The app's worker
    picks them up within a second or two.
    """
    inbox = runtime().inbox
    if not (message_ids or replay_all):
        raise click.UsageError("name the message ids to replay, or pass --all")
    try:
        if replay_all:
            message_ids = tuple(status.message_id for status in inbox.parked(limit=1_000_000))
        missing = [m for m in message_ids if not inbox.replay(m)]
    except InboxUnavailable as exc:
        raise click.ClickException(f"the inbox is unavailable: {exc}") from None
    click.echo(f"replayed {len(message_ids) - len(missing)} message(s)")
    if missing:
        shown = ", ".join(storable(m) for m in missing)  # an id may be any text, even \udcff
        raise click.ClickException(f"not parked, left alone: {shown}")


def add_optional_commands(group: AppGroup) -> None:
    """Commands whose module the generator leaves out when not chosen."""
    if importlib.util.find_spec(f"{__package__}.tunnel") is not None:
        from .tunnel import tunnel

        group.add_command(tunnel)
    if importlib.util.find_spec(f"{__package__}.inbox.redis_runner") is not None:
        group.add_command(worker_command)
    if importlib.util.find_spec(f"{__package__}.devtools") is not None:  # not in `pip install .`
        from .devtools.chat import chat_command
        from .devtools.playground import playground_command

        group.add_command(playground_command)
        group.add_command(chat_command)


@click.command("worker")
@click.option(
    "--maintenance-interval",
    type=int,
    default=30,
    show_default=True,
    help="Seconds between RQ's checks for jobs whose worker died.",
)
@click.option("--burst", is_flag=True, help="Stop once the queue is empty.")
@click.option(
    "--reload", is_flag=True, help="Restart when the project's code changes (development)."
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=0,
    help="Serve this worker's Prometheus metrics on this port (0: not at all). Keep it private.",
)
@with_appcontext
def worker_command(maintenance_interval: int, burst: bool, reload: bool, metrics_port: int) -> None:
    """Run the bot on queued messages (Redis inbox); start as many as you need."""
    if reload:
        reload_worker(maintenance_interval)
        return
    from .inbox import check_durable
    from .inbox.redis_runner import JobTools, work
    from .inbox.redis_store import RedisInbox, shown_url

    current = runtime()
    if not isinstance(current.inbox, RedisInbox):
        raise click.ClickException("REDIS_URL is not set: the SQLite inbox runs in the app itself.")
    try:
        current.inbox.ping()
        check_durable(current.settings, current.inbox)
    except InboxUnavailable as exc:
        where = shown_url(current.inbox.url)
        raise click.ClickException(f"cannot reach Redis at {where}: {exc}") from None
    if metrics_port:
        serve_worker_metrics(metrics_port)
    tools = JobTools.from_settings(current.settings, current.inbox, current.bot)
    work(current.inbox, tools, maintenance_interval=maintenance_interval, burst=burst)


def serve_worker_metrics(port: int) -> None:
    """This worker's metrics (what it handled, how long, replies failed, bridge restarts),
    from a thread of prometheus_client's, for Prometheus to scrape and add up."""
    from prometheus_client import start_http_server

    try:
        start_http_server(port)
    except OSError as exc:
        raise click.ClickException(f"--metrics-port {port}: {exc.strerror}") from None


def reload_worker(maintenance_interval: int) -> None:
    """Run the worker as a child, restarted whenever a .py file of the project changes.

    watchfiles does the watching (and ignores .venv, node_modules and the like).
    """
    try:
        import watchfiles  # a development dependency
    except ImportError:
        raise click.ClickException(
            "--reload needs watchfiles: pip install -e '.[dev]' (make install)"
        ) from None

    root = Path(__file__).resolve().parent.parent
    command = [sys.executable, "-m", "flask", "--app", __package__, "spectrum", "worker"]
    command += ["--maintenance-interval", str(maintenance_interval)]
    click.echo(f"worker reloads when {root} changes (Ctrl-C stops)")
    watchfiles.run_process(
        root,
        target=shlex.join(command),
        target_type="command",
        watch_filter=watchfiles.PythonFilter(),
        callback=lambda changes: click.echo(f"{len(changes)} change(s): restarting the worker"),
    )


add_optional_commands(spectrum)
