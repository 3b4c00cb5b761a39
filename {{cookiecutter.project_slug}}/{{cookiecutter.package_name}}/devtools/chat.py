"""`flask spectrum chat`: talk to the running app from a terminal, as Spectrum would.

Each line typed is a text message, delivered to the app's webhook the way Spectrum
delivers it: built by samples.py, signed with the app's first secret, POSTed. A
line that starts with ':' and a word is a chat command instead (`:attach FILE`,
`:react 👍`, `:group` ...; `:help` lists them), so the bot's own `/commands` go
as text. After each delivery the chat prints the app's answer when it is not a
plain 202, then follows the message in the app's inbox (the same SQLite file, or
Redis) and prints what the bot did: its replies, or its error and attempts.

The parts are pure where they can be: `interpret` turns a typed line into what to
do, `answer_line`, `progress` and `reply_line` turn what came back into lines.
`Chat` is the loop; it reads lines from any function, so tests can drive it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import json
import math
import re
import shlex
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from flask.cli import with_appcontext

from ..config import WEBHOOK_PATH
from ..inbox.contract import Inbox, InboxUnavailable, Status
from ..replies import TAPBACKS
from ..runtime import runtime
from ..samples import content, delivery, encode
from ..verify import signed_headers

PLATFORMS = ("iMessage", "WhatsApp", "Telegram", "Slack")  # others are taken as typed
DEFAULT_SENDER = "+15550100"
WRONG_SECRET = "not-the-signing-secret"  # what :forged signs with
WEBHOOK_ID = "chat"  # sent as X-Spectrum-Webhook-Id
POST_TIMEOUT = 10.0
POLL_SECONDS = 0.05
WAIT_SECONDS = 60.0  # :wait without a number
# `:word ...` is a chat command; anything else (`/weather`, `:)`, `::x`) is a text.
COMMAND = re.compile(r":([A-Za-z]+|\?)(?:\s+(.*?))?\s*", re.DOTALL)
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # what could move the terminal's cursor

COMMANDS = (
    (":attach [FILE]", "a photo or file (its name, type and size: Spectrum sends no bytes)"),
    (":voice [FILE]", "a voice note"),
    (":album [FILE ...]", "several photos sent together"),
    (":contact [NAME]", "a contact card"),
    (":link [URL]", "a link, with its preview"),
    (":react [EMOJI]", "a reaction to your last message (❤️; love, like, laugh ... too)"),
    (":reply TEXT", "a reply in the thread of your last message"),
    (":unknown [NOTE]", "a content type newer than this code"),
    (":raw FILE.json", "a content object from a file, or a whole delivery sent as it is"),
    (":again", "deliver the last one again, as Spectrum retries: expect a duplicate"),
    (":forged [TEXT]", "a text signed with the wrong secret: expect 401"),
    (":group, :direct", "switch to the group chat, or back to the direct one"),
    (":as SENDER", "send as someone else (in the direct chat: another conversation)"),
    (":on PLATFORM", f"switch platform: {', '.join(PLATFORMS)} ..."),
    (
        ":wait [SECONDS]",
        f"wait for replies still to come (retries, Later), {WAIT_SECONDS:g}s at most",
    ),
    (":help, :quit", "this list; end the chat (Ctrl-D, Ctrl-C too)"),
    ("::TEXT", "send the text ':TEXT'"),
    ("(Enter)", "show what came meanwhile (a Later reply, a retry)"),
)
HELP = tuple(f"  {usage:<18} {what}" for usage, what in COMMANDS)


class Refused(Exception):
    """A line the chat cannot act on: one line saying why, then the prompt again."""


@dataclass(frozen=True)
class Send:
    """A delivery to make: the body, and how later lines name its message."""

    body: bytes
    message_id: str | None
    label: str = ""  # how the bot's reactions name it: “hello”, cat.heic ...
    text: str = ""  # its text, a reaction's contentPreview when it is reacted to
    forged: bool = False
    targetable: bool = True  # what :react and :reply may point at (not a reaction)


@dataclass(frozen=True)
class Target:
    message_id: str
    text: str


@dataclass(frozen=True)
class Conversation:
    """Who talks where (what the prompt shows), and what :again, :react, :reply use."""

    platform: str = "iMessage"
    sender: str = DEFAULT_SENDER
    chat: str = "direct"  # or "group"
    last: Send | None = None  # the last delivery, for :again
    target: Target | None = None  # your last message the app took, for :react and :reply

    @property
    def prompt(self) -> str:
        return f"{self.chat} {self.platform} {self.sender}> "


@dataclass(frozen=True)
class Show:
    lines: tuple[str, ...] = ()


@dataclass(frozen=True)
class Wait:
    seconds: float


@dataclass(frozen=True)
class Quit:
    pass


Action = Send | Show | Wait | Quit


def interpret(
    line: str, chat: Conversation, now: datetime | None = None
) -> tuple[Conversation, Action]:
    """What a typed line asks for, and the conversation after it; Refused if it cannot be."""
    if not line.strip():
        return chat, Show()
    match = COMMAND.fullmatch(line)
    if match is None:
        text = line[1:] if line.startswith("::") else line
        return chat, _message(chat, content("text", text), _quoted(text), now, text=text)
    name, arg = match[1].lower(), match[2] or ""
    if name in ("help", "?"):
        return chat, Show(("chat commands (any other line is a text message):", *HELP))
    if name in ("quit", "q", "exit"):
        return chat, Quit()
    if name == "wait":
        return chat, Wait(_seconds(arg) if arg else WAIT_SECONDS)
    if name in ("group", "direct"):
        return (chat if chat.chat == name else _moved(chat, chat=name)), Show()
    if name == "as":
        sender = _word(arg, "usage: :as SENDER, e.g. :as +15550177")
        moved = _moved(chat, sender=sender) if chat.chat == "direct" else chat
        return dataclasses.replace(moved, sender=sender), Show()  # a group keeps its thread
    if name == "on":
        platform = _word(arg, f"usage: :on PLATFORM ({', '.join(PLATFORMS)} ...)")
        known = {p.lower(): p for p in PLATFORMS}
        return _moved(chat, platform=known.get(platform.lower(), platform)), Show()
    if name == "again":
        if chat.last is None:
            raise Refused("nothing to deliver again yet: send a message first")
        return chat, dataclasses.replace(chat.last, forged=False)
    return chat, _compose(name, arg, chat, now)


def _compose(name: str, arg: str, chat: Conversation, now: datetime | None) -> Send:
    """A delivery of one of the other kinds."""
    if name == "attach":
        path = _file(arg) if arg else None
        made = content("attachment", file=path)
        return _message(chat, made, str(made["name"]), now)
    if name == "voice":
        path = _file(arg) if arg else None
        made = content("voice", file=path)
        return _message(chat, made, f"voice note {made['name']}", now)
    if name == "album":
        paths = [_file(part) for part in _split(arg)]
        made = content("album")
        if paths:
            item = made["items"][0]
            photos = [content("attachment", file=path) for path in paths]
            # `delivery` gives each item its own id, from the "p:N/" it leaves there.
            made["items"] = [{**item, "id": f"p:{n}/", "content": p} for n, p in enumerate(photos)]
        return _message(chat, made, f"album of {len(made['items'])} photos", now)
    if name == "contact":
        made = content("contact", arg)
        return _message(chat, made, f"contact {made['name']['formatted']}", now)
    if name == "link":
        if arg and urllib.parse.urlsplit(arg).scheme not in ("http", "https"):
            raise Refused(f"{arg!r} is not a link: give an http(s) URL")
        made = content("richlink", arg)
        return _message(chat, made, str(made["url"]), now)
    if name == "unknown":
        return _message(chat, content("unknown", arg), "unknown content", now)
    if name == "forged":
        text = arg or "forged"
        made = content("text", text)
        return dataclasses.replace(_message(chat, made, _quoted(text), now, text), forged=True)
    if name in ("react", "reply"):
        target = chat.target
        if target is None:
            raise Refused(f"nothing to {name} to yet: send a message first")
        if name == "reply":
            if not arg:
                raise Refused("usage: :reply TEXT")
            made = content("reply", arg, target=target.message_id)
            return _message(chat, made, _quoted(arg), now, text=arg)
        emoji = TAPBACKS.get(arg.lower(), arg) or "❤️"
        made = content("reaction", target.text, target=target.message_id, emoji=emoji)
        return dataclasses.replace(_message(chat, made, f"your {emoji}", now), targetable=False)
    if name == "raw":
        return _raw(_file(arg) if arg else "", chat, now)
    raise Refused(
        f"unknown chat command :{name}: :help lists them (start a text with :: to send ':{name}')"
    )


def _message(
    chat: Conversation, made: dict[str, Any], label: str, now: datetime | None, text: str = ""
) -> Send:
    when = now or datetime.now(UTC)
    payload = delivery(
        made,
        sender_id=chat.sender,
        platform=chat.platform,
        chat=chat.chat,
        timestamp=when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    )
    return Send(encode(payload), payload["message"]["id"], label, text)


def _raw(path: str, chat: Conversation, now: datetime | None) -> Send:
    """A content object (has "type"), wrapped as a new message; anything else sent as it is."""
    if not path:
        raise Refused("usage: :raw FILE.json (a content object, or a whole delivery)")
    body = Path(path).read_bytes()
    try:
        found = json.loads(body)
    except ValueError:  # not JSON: sent anyway, to see the app refuse it
        return Send(body, None, Path(path).name, targetable=False)
    if isinstance(found, dict) and "type" in found and "event" not in found:
        try:
            return _message(chat, found, Path(path).name, now)
        except (KeyError, TypeError, AttributeError) as exc:  # an album without its items
            raise Refused(f"{path}: not a content object ({type(exc).__name__}: {exc})") from None
    return Send(body, _message_id(body), Path(path).name)


def _moved(
    current: Conversation,
    *,
    chat: str | None = None,
    sender: str | None = None,
    platform: str | None = None,
) -> Conversation:
    """Another conversation: :react and :reply have nothing there to point at yet."""
    return dataclasses.replace(
        current,
        chat=chat or current.chat,
        sender=sender or current.sender,
        platform=platform or current.platform,
        target=None,
    )


def _file(arg: str) -> str:
    parts = _split(arg)
    name = parts[0] if len(parts) == 1 else arg  # a name with spaces, unquoted
    path = Path(name).expanduser()
    if not path.is_file():
        raise Refused(f"no such file: {path}" if not path.exists() else f"not a file: {path}")
    return str(path)


def _split(arg: str) -> list[str]:
    try:
        return shlex.split(arg)  # quoted or backslashed, as terminals paste dropped files
    except ValueError as exc:
        raise Refused(f"cannot read the file names in {arg!r}: {exc}") from None


def _word(arg: str, usage: str) -> str:
    if not arg or len(arg.split()) != 1:
        raise Refused(usage)
    return arg


def _seconds(arg: str) -> float:
    try:
        seconds = float(arg)
    except ValueError:
        seconds = -1.0
    if not (math.isfinite(seconds) and seconds >= 0):
        raise Refused("usage: :wait [SECONDS], a number of seconds")
    return seconds


def _quoted(text: str, limit: int = 40) -> str:
    one_line = " ".join(text.split())
    return f"“{one_line[: limit - 1]}…”" if len(one_line) > limit else f"“{one_line}”"


def _message_id(body: bytes) -> str | None:
    try:
        found = json.loads(body)["message"]["id"]
    except (ValueError, TypeError, KeyError):
        return None
    return found if isinstance(found, str) else None


# -- what came back, as lines ------------------------------------------------------


def answer_line(status: int, text: str) -> str | None:
    """The app's answer in one line, or None for a plain 202."""
    answer = _object(text)
    said = answer.get("status")
    if status == 202 and said == "accepted":
        return None
    if said == "duplicate":
        return f"app: {status} duplicate: already accepted, the bot does not run again"
    if said == "ignored":
        return f"app: {status} ignored: event {json.dumps(answer.get('event'))} is not a message"
    reason = answer.get("error") or said or " ".join(text.split())[:200]
    return _clean(f"app: {status} {reason}".rstrip())


def progress(
    status: Status | None, who: str, labels: Mapping[str, str], failures: int = 0
) -> tuple[list[str], bool, int]:
    """Lines for a message's status, whether the bot is finished with it, failures shown.

    `failures` is how many failed attempts are shown already: each new one is a line.
    """
    if status is None:
        return ["(the app's inbox is not this one: its log shows what the bot did)"], True, 0
    outcome = status.outcome or {}
    error = outcome.get("error")
    if status.state == "failed":
        plural = "" if status.attempts == 1 else "s"
        return (
            [_clean(f"{who} failed, parked after {status.attempts} attempt{plural}: {error}")],
            True,
            status.attempts,
        )
    if status.state == "done":
        replies = [r for r in outcome.get("replies", []) if isinstance(r, dict)]
        lines = [reply_line(r.get("content") or {}, labels, who) for r in replies]
        return lines or [f"({who} sent no reply)"], True, failures
    # A message in hand again ("working") still carries the last attempt's error,
    # and its count already includes the attempt under way: only a retry that
    # waits ("pending") is a failure to show.
    if error and status.state == "pending" and status.attempts > failures:
        line = _clean(f"{who} failed (attempt {status.attempts}): {error}; trying again")
        return [line], False, status.attempts
    return [], False, failures


def scheduled(message_id: str, outcome: dict[str, Any] | None) -> list[str]:
    """The messages a Later reply put in the inbox (handling.py names them so)."""
    replies = (outcome or {}).get("replies", [])
    return [
        f"later:{message_id}#{index}"
        for index, reply in enumerate(replies)
        if isinstance(reply, dict) and (reply.get("content") or {}).get("type") == "later"
    ]


def reply_line(
    reply: dict[str, Any], labels: Mapping[str, str], who: str = "bot", now: float | None = None
) -> str:
    """One reply the bot sent, as a line: texts as they are, anything else in brackets."""
    kind = reply.get("type")
    if kind == "reaction":
        return _clean(
            f"{who} reacted {reply.get('emoji')} to {_named(reply.get('target'), labels)}"
        )
    if kind == "reply":
        inner = reply.get("content") or {}
        where = f"{who}, in the thread of {_named(reply.get('target'), labels)}: "
        return where + _thing(inner, len(where)) + _tag(reply)
    if kind == "edit":
        return _clean(f"{who} edited {_ref(reply.get('target'))}: ") + _thing(reply, 0)
    if kind == "unsend":
        return _clean(f"{who} unsent {_ref(reply.get('target'))}")
    if kind == "later":
        at = float(reply.get("at") or 0)
        wait = max(0.0, at - (time.time() if now is None else now))
        local = datetime.fromtimestamp(at).strftime("%H:%M:%S") if at else "?"
        inner = " · ".join(_thing(r, 0) for r in reply.get("replies", []) if isinstance(r, dict))
        return f"{who} will send in {_duration(wait)} (at {local}): {inner}"
    return f"{who}: " + _thing(reply, len(who) + 2) + _tag(reply)


def _thing(reply: dict[str, Any], indent: int) -> str:
    kind = reply.get("type")
    if kind in ("text", "edit"):
        text = _clean(str(reply.get("text", "")))
        return text.replace("\n", "\n" + " " * indent)  # later lines under the first
    if kind == "markdown":
        return (
            _clean(str(reply.get("markdown", ""))).replace("\n", "\n" + " " * indent)
            + "  (markdown)"
        )
    if kind in ("file", "voice"):
        size = reply.get("size")
        seconds = reply.get("duration")
        facts = [
            str(reply.get("mimeType")),
            *([_size(size)] if isinstance(size, int) else []),
            *([f"{seconds:g} s"] if isinstance(seconds, int | float) else []),
            *([str(reply["url"])] if reply.get("url") else []),
        ]
        what = "voice note" if kind == "voice" else "file"
        return _clean(f"[{what} {reply.get('name')}, {', '.join(facts)}]")
    if kind == "contact":
        details = [str(x) for x in (*reply.get("phones", ()), *reply.get("emails", ()))]
        return _clean(f"[contact {reply.get('name')}{''.join(', ' + d for d in details)}]")
    if kind == "richlink":
        return _clean(f"[link {reply.get('url')}]")
    shown = json.dumps({k: v for k, v in reply.items() if k != "type"}, ensure_ascii=False)
    return _clean(f"[{kind} {shown[:200]}]")


def _tag(reply: dict[str, Any]) -> str:
    return _clean(f"  #{reply['tag']}") if reply.get("tag") else ""


def _named(target: Any, labels: Mapping[str, str]) -> str:
    message_id = target.get("id") if isinstance(target, dict) else target
    return labels.get(str(message_id)) or f"message {message_id}"


def _ref(target: Any) -> str:
    """An edit's or unsend's target: the tag the bot gave its message, or its id."""
    return f"#{target}"


def _size(size: int) -> str:
    if size < 1000:
        return f"{size} B"
    if size < 1000**2:
        return f"{size / 1000:.1f} kB"
    return f"{size / 1000**2:.1f} MB"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _clean(text: str) -> str:
    return CONTROL.sub("\ufffd", text)


def _object(text: str) -> dict[str, Any]:
    try:
        found = json.loads(text)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


# -- the app, over HTTP ------------------------------------------------------------


# What urlopen raises when nothing (or no HTTP server) answers; ValueError: a URL it cannot use.
UNREACHABLE = (urllib.error.URLError, OSError, http.client.HTTPException, ValueError)


class Unreachable(Exception):
    """The app did not answer: the one line to show."""


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    """POST as `flask spectrum send-test` does (not imported: cli.py imports this module)."""
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=POST_TIMEOUT) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")
    except UNREACHABLE as exc:
        raise Unreachable(_unreachable(url, exc)) from None


def health(url: str) -> str | None:
    """None when the app at `url` answers its /healthz, else the line saying what is wrong."""
    parts = urllib.parse.urlsplit(url)
    try:
        with urllib.request.urlopen(f"{parts.scheme}://{parts.netloc}/healthz", timeout=2):
            return None
    except urllib.error.HTTPError as exc:
        if exc.code == 503:
            return "the app answers, but its inbox is unavailable (/healthz: 503): see its log"
        return None  # something answers there: the deliveries will say more
    except UNREACHABLE as exc:
        return _unreachable(url, exc)


def _unreachable(url: str, exc: Exception) -> str:
    reason = getattr(exc, "reason", exc)
    return f"cannot reach {url} ({reason}): start the app first (`make dev` or `make run`) or pass --url."


# -- the loop ------------------------------------------------------------------------


@dataclass
class Watch:
    """A message whose outcome is still to be shown."""

    message_id: str
    who: str = "bot"  # "bot (later)" for what a Later reply sends
    failures: int = 0  # failed attempts shown already
    state: str = "pending"


@dataclass
class Chat:
    """The conversation with the app at `url`: read a line, deliver it, show what happened."""

    url: str
    secrets: tuple[str, ...]
    inbox: Inbox
    conversation: Conversation = field(default_factory=Conversation)
    timeout: float = 10.0  # seconds to follow each message
    worker: str = "the app's worker"  # what runs the bot, for "still pending" lines
    out: Callable[[str], None] = click.echo
    color: bool = False
    labels: dict[str, str] = field(default_factory=dict)  # message id -> how lines name it
    watches: dict[str, Watch] = field(default_factory=dict)
    dry_run_told: bool = False

    def run(self, read: Callable[[str], str | None]) -> None:
        """Until :quit, the end of the input, or Ctrl-C at the prompt."""
        chat = self.conversation
        self.say(f"Chatting with {self.url} as {chat.sender} ({chat.chat}, {chat.platform}).")
        self.say("Type a message, or :help for the chat commands.", dim=True)
        problem = health(self.url)
        if problem:
            self.say(problem, warn=True)
        while True:
            try:
                self.check(list(self.watches.values()))
                line = read(self.conversation.prompt)
            except KeyboardInterrupt:  # at the prompt: the end, on a line of its own
                self.out("")
                return
            except UnicodeDecodeError:
                self.say("the input is not UTF-8 text: ending the chat", warn=True)
                return
            if line is None or not self.handle(line):
                return

    def handle(self, line: str) -> bool:
        """Act on one typed line; False to end the chat."""
        try:
            self.conversation, action = interpret(line, self.conversation)
        except Refused as exc:
            self.say(str(exc), warn=True)
            return True
        except OSError as exc:  # a file named in the line
            self.say(f"cannot read {exc.filename or 'the file'}: {exc.strerror or exc}", warn=True)
            return True
        if isinstance(action, Quit):
            return False
        if isinstance(action, Show):
            for shown in action.lines:
                self.say(shown)
        elif isinstance(action, Wait):
            if not self.watches:
                self.say("nothing to wait for", dim=True)
            else:
                self.follow(list(self.watches.values()), action.seconds)
        else:
            self.deliver(action)
        return True

    def deliver(self, send: Send) -> None:
        secret = self.secrets[0]
        if send.forged:
            secret = WRONG_SECRET + ("!" if WRONG_SECRET in self.secrets else "")
        headers = signed_headers(secret, int(time.time()), send.body)
        headers["X-Spectrum-Webhook-Id"] = WEBHOOK_ID
        try:
            status, text = post(self.url, send.body, headers)
        except Unreachable as exc:
            self.say(str(exc), warn=True)
            return
        self.conversation = dataclasses.replace(self.conversation, last=send)
        line = answer_line(status, text)
        if line:
            self.say(line, warn=status >= 300)
        message_id = _object(text).get("message_id") or send.message_id
        if status >= 300 or not isinstance(message_id, str):
            return
        if send.label:
            self.labels[message_id] = send.label
        if send.targetable:
            target = Target(message_id, send.text)
            self.conversation = dataclasses.replace(self.conversation, target=target)
        if status == 202:
            self.follow([Watch(message_id)], self.timeout)

    def follow(self, watches: list[Watch], seconds: float) -> None:
        """Show what the bot does with these messages, for `seconds` at most (Ctrl-C stops)."""
        for watch in watches:
            self.watches.setdefault(watch.message_id, watch)
        deadline = time.monotonic() + seconds
        try:
            while True:
                if not self.check([w for w in watches if w.message_id in self.watches]):
                    return
                waiting = [w for w in watches if w.message_id in self.watches]
                if not waiting:
                    return
                if time.monotonic() >= deadline:
                    for watch in waiting:
                        self.say(self.still(watch, seconds), dim=True)
                    return
                time.sleep(POLL_SECONDS)
        except KeyboardInterrupt:
            self.say("(stopped waiting: Enter or :wait shows what comes)", dim=True)

    def check(self, watches: list[Watch]) -> bool:
        """Show what is new for these messages; False if the inbox cannot be read."""
        for watch in watches:
            try:
                status = self.inbox.status(watch.message_id)
            except InboxUnavailable as exc:
                self.say(f"cannot read the app's inbox: {exc}", warn=True)
                return False
            lines, finished, watch.failures = progress(
                status, watch.who, self.labels, watch.failures
            )
            watch.state = status.state if status else watch.state
            for line in lines:
                failed = line.startswith(f"{watch.who} failed")
                self.say(line, bot=not line.startswith("("), warn=failed)
            if finished:
                del self.watches[watch.message_id]
                self.tell_dry_run(status)
                for later in scheduled(watch.message_id, status.outcome if status else None):
                    self.watches.setdefault(later, Watch(later, who="bot (later)"))
        return True

    def tell_dry_run(self, status: Status | None) -> None:
        replies = ((status.outcome or {}) if status else {}).get("replies", [])
        modes = {(r.get("receipt") or {}).get("mode") for r in replies if isinstance(r, dict)}
        if "dry-run" in modes and not self.dry_run_told:
            self.dry_run_told = True
            self.say("(a dry run: the app logs its replies instead of sending them)", dim=True)

    def still(self, watch: Watch, seconds: float) -> str:
        if watch.who != "bot":
            return f"{watch.who} is still to come: Enter or :wait shows it"
        if watch.failures:
            return f"still retrying after {seconds:g}s: Enter or :wait shows what comes"
        return (
            f"still {watch.state} after {seconds:g}s: is {self.worker} running? (:wait follows it)"
        )

    def say(self, line: str, *, bot: bool = False, warn: bool = False, dim: bool = False) -> None:
        if self.color and (bot or warn or dim):
            line = click.style(line, fg="yellow" if warn else "cyan" if bot else None, dim=dim)
        self.out(line)


def terminal_reader() -> Callable[[str], str | None]:
    """Lines typed at a prompt (with line editing), or read from piped input.

    Piped lines are shown after their prompt, so the output reads as the session did.
    """
    if sys.stdin.isatty() and sys.stdout.isatty():
        with contextlib.suppress(ImportError):  # not on every platform
            import readline  # noqa: F401  (editing and history for input())

        def typed(prompt: str) -> str | None:
            try:
                return input(prompt)
            except EOFError:  # Ctrl-D
                click.echo()
                return None

        return typed

    def piped(prompt: str) -> str | None:
        line = sys.stdin.readline()
        if not line:
            return None
        line = line.rstrip("\r\n")
        click.echo(prompt + line)
        return line

    return piped


def _url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        try:
            parts = urllib.parse.urlsplit(value)
            usable = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
        except ValueError:  # a bad port or IPv6 address
            usable = False
        if not usable:
            example = f"http://127.0.0.1:8000{WEBHOOK_PATH}"
            raise click.BadParameter(f"{value!r} is not an http(s) URL, e.g. {example}")
    return value


def _sender(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not value or len(value.split()) != 1:
        raise click.BadParameter(f"{value!r}: a sender id is one word, e.g. {DEFAULT_SENDER}")
    return value


def _timeout(ctx: click.Context, param: click.Parameter, value: float) -> float:
    if not (math.isfinite(value) and value >= 0):
        raise click.BadParameter(f"{value!r} is not a number of seconds (0 or more)")
    return value


HELP_TEXT = f"""Talk to the running app from this terminal, as Spectrum would.

Each line you type is delivered to the app's webhook as a signed text message,
and the bot's replies are printed as it sends them. Lines starting with ':' are
chat commands; the bot's own /commands go as text. Start the app first (`make dev` or `make run`).

\b
{chr(10).join(HELP)}
"""


@click.command("chat", help=HELP_TEXT)
@click.option(
    "--url",
    callback=_url,
    show_default="http://127.0.0.1:$PORT" + WEBHOOK_PATH,
    help="The app's webhook, where deliveries go.",
)
@click.option("--platform", default="iMessage", show_default=True, help="The platform to start on.")
@click.option(
    "--sender", default=DEFAULT_SENDER, show_default=True, callback=_sender, help="Who you are."
)
@click.option("--group", is_flag=True, help="Start in the group chat, not the direct one.")
@click.option(
    "--timeout",
    type=float,
    default=10.0,
    show_default=True,
    callback=_timeout,
    help="Seconds to wait for the bot after each message.",
)
@with_appcontext
def chat_command(url: str | None, platform: str, sender: str, group: bool, timeout: float) -> None:
    current = runtime()
    secrets = current.settings.require_signing_secrets()
    target = url or f"http://127.0.0.1:{current.settings.port}{WEBHOOK_PATH}"
    known = {p.lower(): p for p in PLATFORMS}
    conversation = Conversation(
        platform=known.get(platform.lower(), platform),
        sender=sender,
        chat="group" if group else "direct",
    )
    worker = "the app's worker" if current.bot_threads is not None else "`make worker`"
    chat = Chat(target, secrets, current.inbox, conversation, timeout, worker, color=True)
    chat.run(terminal_reader())
