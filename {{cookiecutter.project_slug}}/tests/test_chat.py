"""`flask spectrum chat`: typed lines made into deliveries, and what came back made into lines;
then whole conversations with the app served for real on 127.0.0.1, its bot threads running."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import WEBHOOK_PATH, echo_bot, served, unused_port, wait_until
from flask import Flask

from {{ cookiecutter.package_name }} import create_app
from {{ cookiecutter.package_name }}.botkit import Bot, Context
from {{ cookiecutter.package_name }}.config import Settings
from {{ cookiecutter.package_name }}.devtools.chat import (
    Chat,
    Conversation,
    Quit,
    Refused,
    Send,
    Show,
    Target,
    Wait,
    answer_line,
    interpret,
    progress,
    reply_line,
)
from {{ cookiecutter.package_name }}.events import (
    Content,
    Reaction,
    Text,
    ThreadReply,
    parse_event,
)
from {{ cookiecutter.package_name }}.inbox.contract import Status
from {{ cookiecutter.package_name }}.replies import (
    ContactCard,
    Edit,
    File,
    Files,
    Later,
    Link,
    Markdown,
    React,
    Say,
    Threaded,
    Unsend,
    VoiceNote,
    to_contents,
)
from {{ cookiecutter.package_name }}.runtime import runtime
from {{ cookiecutter.package_name }}.samples import delivery, encode

HEADER = "Type a message, or :help for the chat commands."


def sent(line: str, chat: Conversation | None = None) -> tuple[Conversation, dict[str, Any]]:
    """The conversation after `line`, and the delivery it makes (parsed back)."""
    after, action = interpret(line, chat or Conversation())
    assert isinstance(action, Send), action
    payload = json.loads(action.body)
    assert parse_event(payload).problem is None  # the app takes it
    return after, payload


def message_content(line: str, chat: Conversation | None = None) -> dict[str, Any]:
    return sent(line, chat)[1]["message"]["content"]


# -- a typed line, as a delivery -------------------------------------------------


def test_a_line_is_a_text_message_in_the_direct_chat() -> None:
    chat, payload = sent("hello there")
    assert chat == Conversation()
    assert payload["message"]["content"] == {"type": "text", "text": "hello there"}
    assert payload["message"]["sender"] == {"id": "+15550100", "platform": "iMessage"}
    assert (payload["space"]["id"], payload["space"]["type"]) == ("any;-;+15550100", "dm")
    assert payload["message"]["timestamp"].endswith("Z")


@pytest.mark.parametrize(
    ("line", "text"),
    [
        ("/weather paris", "/weather paris"),  # the bot's own commands go as text
        ("::help", ":help"),  # a text that starts with ':'
        (":)", ":)"),
        (":wave: hi", ":wave: hi"),
        ("  spaced  ", "  spaced  "),
    ],
)
def test_lines_that_are_texts(line: str, text: str) -> None:
    assert message_content(line) == {"type": "text", "text": text}


def test_attach_voice_and_album_send_the_files_names_types_and_sizes(tmp_path: Path) -> None:
    photo = tmp_path / "cat photo.jpg"
    photo.write_bytes(b"x" * 2048)
    memo = tmp_path / "memo.m4a"
    memo.write_bytes(b"y" * 100)
    escaped = str(photo).replace(" ", "\\ ")  # as a terminal pastes a dropped file
    for line in (f":attach {photo}", f':attach "{photo}"', f":attach {escaped}"):
        attached = message_content(line)
        assert (attached["type"], attached["name"]) == ("attachment", "cat photo.jpg")
        assert (attached["mimeType"], attached["size"]) == ("image/jpeg", 2048)
    assert message_content(":attach")["name"] == "IMG_4127.HEIC"  # a sample without a file

    voice = message_content(f":voice {memo}")
    assert (voice["type"], voice["name"], voice["size"]) == ("voice", "memo.m4a", 100)
    assert message_content(":voice")["type"] == "voice"

    _, payload = sent(f":album '{photo}' {memo}")
    items = payload["message"]["content"]["items"]
    assert payload["message"]["content"]["type"] == "group"
    assert [item["content"]["name"] for item in items] == ["cat photo.jpg", "memo.m4a"]
    assert len({item["id"] for item in items}) == 2
    assert len(message_content(":album")["items"]) == 2


def test_contact_link_and_unknown() -> None:
    assert message_content(":contact Grace Hopper")["name"]["formatted"] == "Grace Hopper"
    assert message_content(":contact")["name"]["formatted"] == "Ada Lovelace"
    assert message_content(":link https://example.com/a") == {
        "type": "richlink",
        "url": "https://example.com/a",
    }
    assert message_content(":unknown a poll")["type"] == "future-thing"


def test_react_and_reply_point_at_your_last_message() -> None:
    chat = Conversation(target=Target("spc-msg-1", "hello"))
    reaction = message_content(":react 👍", chat)
    assert (reaction["type"], reaction["emoji"]) == ("reaction", "👍")
    assert reaction["target"]["id"] == "spc-msg-1"
    assert reaction["target"]["contentPreview"] == "hello"
    assert message_content(":react", chat)["emoji"] == "❤️"
    assert message_content(":react like", chat)["emoji"] == "👍"  # the SDK's tapback names
    _, action = interpret(":react 👍", chat)
    assert (
        isinstance(action, Send) and not action.targetable
    )  # you react to messages, not reactions

    reply = message_content(":reply me too", chat)
    assert reply["type"] == "reply"
    assert reply["content"] == {"type": "text", "text": "me too"}
    assert reply["target"]["id"] == "spc-msg-1"


def test_raw_sends_a_content_object_wrapped_or_a_file_as_it_is(tmp_path: Path) -> None:
    content_file = tmp_path / "content.json"
    content_file.write_text('{"type": "text", "text": "from a file"}')
    chat = Conversation(sender="+15550177", platform="Telegram")
    _, payload = sent(f":raw {content_file}", chat)
    assert payload["message"]["content"] == {"type": "text", "text": "from a file"}
    assert payload["message"]["sender"]["id"] == "+15550177"

    whole = tmp_path / "delivery.json"
    whole.write_bytes(b'{"event": "messages", "as": "typed"}')
    _, action = interpret(f":raw {whole}", chat)
    assert isinstance(action, Send) and action.body == whole.read_bytes()

    broken = tmp_path / "broken.json"
    broken.write_bytes(b"{not json")
    _, action = interpret(f":raw {broken}", chat)
    assert isinstance(action, Send) and (action.body, action.message_id) == (b"{not json", None)


def test_again_is_the_last_delivery_byte_for_byte_properly_signed() -> None:
    last = Send(b'{"event":"messages"}', "m-1", forged=True)
    _, action = interpret(":again", Conversation(last=last))
    assert action == dataclasses.replace(last, forged=False)
    _, forged = interpret(":forged hi", Conversation())
    assert isinstance(forged, Send) and forged.forged
    assert json.loads(forged.body)["message"]["content"]["text"] == "hi"


def test_switching_the_conversation() -> None:
    chat = Conversation(target=Target("m-1", "hi"))
    group, _ = interpret(":group", chat)
    assert (group.chat, group.target, group.prompt) == ("group", None, "group iMessage +15550100> ")
    _, payload = sent("hello all", group)
    assert payload["space"]["type"] == "group" and payload["space"]["id"] != "any;-;+15550100"

    # In a group, another member can react to your message: the target stays.
    member, _ = interpret(":as +15550177", dataclasses.replace(group, target=chat.target))
    assert (member.sender, member.target) == ("+15550177", chat.target)
    assert sent("me too", member)[1]["space"] == payload["space"]
    # In the direct chat, another sender is another conversation.
    other, _ = interpret(":as +15550177", chat)
    assert (other.sender, other.target) == ("+15550177", None)
    assert sent("hi", other)[1]["space"]["id"] == "any;-;+15550177"

    telegram, _ = interpret(":on telegram", chat)
    assert (telegram.platform, telegram.target) == ("Telegram", None)
    assert sent("hi", telegram)[1]["message"]["platform"] == "Telegram"
    assert interpret(":on Matrix", chat)[0].platform == "Matrix"  # taken as typed
    assert interpret(":direct", group)[0].chat == "direct"


def test_help_wait_quit_and_empty_lines() -> None:
    chat = Conversation()
    _, shown = interpret(":help", chat)
    assert isinstance(shown, Show) and any(":attach" in line for line in shown.lines)
    assert interpret(":?", chat)[1] == shown
    assert interpret(":wait", chat)[1] == Wait(60.0)
    assert interpret(":wait 2.5", chat)[1] == Wait(2.5)
    assert interpret(":quit", chat)[1] == Quit() == interpret(":Q", chat)[1]
    assert interpret("", chat)[1] == Show() == interpret("   ", chat)[1]


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (":smile", "unknown chat command :smile: :help lists them"),
        (":attach /no/such/photo.jpg", "no such file: /no/such/photo.jpg"),
        (":attach /", "not a file: /"),
        (":album 'unclosed", "cannot read the file names"),
        (":raw", "usage: :raw FILE.json"),
        (":react", "nothing to react to yet: send a message first"),
        (":reply hi", "nothing to reply to yet: send a message first"),
        (":again", "nothing to deliver again yet"),
        (":as", "usage: :as SENDER"),
        (":as two words", "usage: :as SENDER"),
        (":on", "usage: :on PLATFORM"),
        (":wait soon", "usage: :wait [SECONDS]"),
        (":wait nan", "usage: :wait [SECONDS]"),
        (":link ftp://example.com", "'ftp://example.com' is not a link"),
    ],
)
def test_lines_it_refuses_say_why(line: str, error: str) -> None:
    with pytest.raises(Refused) as refused:
        interpret(line, Conversation())
    assert str(refused.value).startswith(error)


def test_reply_needs_a_text() -> None:
    with pytest.raises(Refused, match="usage: :reply TEXT"):
        interpret(":reply", Conversation(target=Target("m-1", "hi")))


# -- what came back, as lines ------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "text", "line"),
    [
        (202, '{"status":"accepted","message_id":"m"}', None),
        (
            200,
            '{"status":"duplicate","message_id":"m"}',
            "app: 200 duplicate: already accepted, the bot does not run again",
        ),
        (
            200,
            '{"status":"ignored","event":"typing"}',
            'app: 200 ignored: event "typing" is not a message',
        ),
        (
            401,
            '{"error":"signature does not match any configured secret"}',
            "app: 401 signature does not match any configured secret",
        ),
        (
            503,
            '{"error":"inbox unavailable, retry later"}',
            "app: 503 inbox unavailable, retry later",
        ),
        (502, "<html>Bad\n gateway</html>", "app: 502 <html>Bad gateway</html>"),
    ],
)
def test_the_apps_answer_in_one_line(status: int, text: str, line: str | None) -> None:
    assert answer_line(status, text) == line


def test_every_reply_kind_is_one_readable_line(tmp_path: Path) -> None:
    files = Files(tmp_path / "files")
    chart = tmp_path / "chart.png"
    chart.write_bytes(b"p" * 2100)
    replies = to_contents(
        [
            "multi\nline",
            Markdown("**Done**"),
            React("love"),
            React("👍", to="m-2"),
            Threaded("in the thread"),
            File(chart),
            File("https://example.com/report.pdf"),
            VoiceNote(b"a" * 10, name="memo.m4a", duration=4.2),
            ContactCard("Ada Lovelace", phones=["+15550101"], emails=["ada@example.com"]),
            Link("https://example.com"),
            Say("Working on it", tag="status"),
            Edit("status", "Done"),
            Unsend("status"),
            Later(600, "Time to stretch!", React("like")),
        ],
        "m-1",
        files,
    )
    labels = {"m-1": "“hello”"}
    now = replies[-1]["at"] - 600
    lines = [reply_line(reply, labels, now=now) for reply in replies]
    assert lines[:-1] == [
        "bot: multi\n     line",
        "bot: **Done**  (markdown)",
        "bot reacted ❤️ to “hello”",
        "bot reacted 👍 to message m-2",
        "bot, in the thread of “hello”: in the thread",
        "bot: [file chart.png, image/png, 2.1 kB]",
        "bot: [file report.pdf, application/pdf, https://example.com/report.pdf]",
        "bot: [voice note memo.m4a, audio/mp4, 10 B, 4.2 s]",
        "bot: [contact Ada Lovelace, +15550101, ada@example.com]",
        "bot: [link https://example.com]",
        "bot: Working on it  #status",
        "bot edited #status: Done",
        "bot unsent #status",
    ]
    assert lines[-1].startswith("bot will send in 10 min (at ")
    assert lines[-1].endswith('): Time to stretch! · [reaction {"emoji": "👍", "target": "m-1"}]')
    assert reply_line({"type": "text", "text": "\x1b[2Jgone"}, {}) == "bot: \ufffd[2Jgone"
    assert reply_line({"type": "poll", "question": "?"}, {}) == 'bot: [poll {"question": "?"}]'


def test_progress_of_a_message() -> None:
    def status(state: str, attempts: int = 1, outcome: Any = None) -> Status:
        return Status("m-1", state, attempts, outcome)

    assert progress(status("pending", 0), "bot", {}) == ([], False, 0)
    retrying = status("pending", 1, {"error": "RuntimeError: boom"})
    assert progress(retrying, "bot", {}) == (
        ["bot failed (attempt 1): RuntimeError: boom; trying again"],
        False,
        1,
    )
    assert progress(retrying, "bot", {}, failures=1) == ([], False, 1)  # shown once
    # Taken up again: attempt 2 is under way, not failed (the error is attempt 1's).
    again = status("working", 2, {"error": "RuntimeError: boom"})
    assert progress(again, "bot", {}, failures=1) == ([], False, 1)
    parked = status("failed", 5, {"error": "RuntimeError: boom"})
    assert progress(parked, "bot", {}, failures=4) == (
        ["bot failed, parked after 5 attempts: RuntimeError: boom"],
        True,
        5,
    )
    done = status(
        "done", 1, {"replies": [{"content": {"type": "text", "text": "hi"}, "receipt": {}}]}
    )
    assert progress(done, "bot", {}) == (["bot: hi"], True, 0)
    assert progress(status("done", 1, {"replies": []}), "bot", {}) == (
        ["(bot sent no reply)"],
        True,
        0,
    )
    assert progress(None, "bot", {})[0] == [
        "(the app's inbox is not this one: its log shows what the bot did)"
    ]


# -- conversations with the app served for real ----------------------------------


def telling_bot() -> Bot:
    """echo_bot, and for everything else a line saying what it got, as the bot saw it."""
    bot = echo_bot()

    @bot.on(Reaction)
    def reaction(ctx: Context, got: Reaction) -> str:
        target = got.target
        return f"reaction {got.emoji} on {target.id if target else None} ({target and target.content_preview})"

    @bot.on(ThreadReply)
    def reply(ctx: Context, got: ThreadReply) -> str:
        inner = got.content.text if isinstance(got.content, Text) else None
        return f"reply {inner!r} to {got.target.id if got.target else None}"

    @bot.otherwise
    def anything(ctx: Context, got: Content) -> str:
        where = f"{ctx.space.kind} {ctx.platform} {ctx.sender.id if ctx.sender else None}"
        return f"{got.type} in {where}"

    return bot


def chat(app: Flask, url: str, typed: str, *args: str) -> list[str]:
    """The session's output, one line per item, for lines typed on stdin."""
    result = app.test_cli_runner().invoke(
        args=["spectrum", "chat", "--url", url, *args], input=typed
    )
    assert result.exception is None, result.output
    assert result.exit_code == 0
    assert "Traceback" not in result.output
    return result.output.splitlines()


def test_a_conversation_with_every_chat_command(settings: Settings, tmp_path: Path) -> None:
    photo = tmp_path / "cat.jpg"
    photo.write_bytes(b"x" * 1500)
    content_file = tmp_path / "content.json"
    content_file.write_text('{"type": "richlink", "url": "https://example.com/raw"}')
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    whole = tmp_path / "delivery.json"
    whole.write_bytes(
        encode(delivery({"type": "text", "text": "as it is"}, message_id="spc-msg-raw"))
    )
    typed = [
        "hello",
        ":react 👍",
        ":reply me too",
        ":again",
        f":attach {photo}",
        ":voice",
        ":album",
        ":contact Grace Hopper",
        ":link https://example.com/a",
        ":unknown",
        f":raw {content_file}",
        f":raw {broken}",
        f":raw {whole}",
        f":raw {whole}",
        ":forged not me",
        ":again",
        ":group",
        ":as +15550177",
        ":on telegram",
        "hi all",
        ":direct",
        ":react",
        "::smile",
        ":smile",
        ":attach /no/such.jpg",
        ":wait",
        ":help",
        ":quit",
        "never read",
    ]
    with served(settings, telling_bot()) as (app, url):
        output = chat(app, url, "\n".join(typed) + "\n")
    assert output[0] == f"Chatting with {url} as +15550100 (direct, iMessage)."
    assert output[1] == HEADER
    you = "direct iMessage +15550100> "
    transcript = output[2:]
    reaction_target = transcript[4].split(" on ")[1].split(" ")[0]
    assert reaction_target.startswith("spc-msg-")
    refused = transcript[25]
    assert refused.startswith("app: 400 body is not ")
    help_lines = interpret(":help", Conversation())[1]
    assert isinstance(help_lines, Show)
    assert transcript == [
        you + "hello",
        "bot: You said: hello",
        "(a dry run: the app logs its replies instead of sending them)",
        you + ":react 👍",
        # The reaction is on "hello", the message before it.
        "bot: reaction 👍 on " + reaction_target + " (hello)",
        you + ":reply me too",
        "bot: reply 'me too' to " + reaction_target,
        you + ":again",
        "app: 200 duplicate: already accepted, the bot does not run again",
        you + f":attach {photo}",
        "bot reacted ❤️ to cat.jpg",
        "bot: Thanks for the image/jpeg!",
        you + ":voice",
        "bot: voice in direct iMessage +15550100",
        you + ":album",
        "bot: group in direct iMessage +15550100",
        you + ":contact Grace Hopper",
        "bot: contact in direct iMessage +15550100",
        you + ":link https://example.com/a",
        "bot: richlink in direct iMessage +15550100",
        you + ":unknown",
        "bot: future-thing in direct iMessage +15550100",
        you + f":raw {content_file}",
        "bot: richlink in direct iMessage +15550100",
        you + f":raw {broken}",
        refused,  # what the webhook says of a body that is not JSON
        you + f":raw {whole}",
        "bot: You said: as it is",
        you + f":raw {whole}",
        "app: 200 duplicate: already accepted, the bot does not run again",
        you + ":forged not me",
        "app: 401 signature does not match any configured secret",
        you + ":again",  # the same bytes, properly signed this time
        "bot: You said: not me",
        you + ":group",
        "group iMessage +15550100> :as +15550177",
        "group iMessage +15550177> :on telegram",
        "group Telegram +15550177> hi all",
        "bot: You said: hi all",
        "group Telegram +15550177> :direct",
        "direct Telegram +15550177> :react",
        "nothing to react to yet: send a message first",
        "direct Telegram +15550177> ::smile",
        "bot: You said: :smile",
        "direct Telegram +15550177> :smile",
        "unknown chat command :smile: :help lists them (start a text with :: to send ':smile')",
        "direct Telegram +15550177> :attach /no/such.jpg",
        "no such file: /no/such.jpg",
        "direct Telegram +15550177> :wait",
        "nothing to wait for",
        "direct Telegram +15550177> :help",
        *help_lines.lines,
        "direct Telegram +15550177> :quit",
    ]


def test_the_group_and_its_members_reach_the_bot(settings: Settings) -> None:
    typed = "hello all\n:as +15550177\n:react\n:on whatsapp\n:voice\n"
    with served(settings, telling_bot()) as (app, url):
        output = chat(app, url, typed, "--group", "--sender", "+15550111", "--platform", "slack")
    assert output[0] == f"Chatting with {url} as +15550111 (group, Slack)."
    assert output[2:] == [
        "group Slack +15550111> hello all",
        "bot: You said: hello all",
        "(a dry run: the app logs its replies instead of sending them)",
        "group Slack +15550111> :as +15550177",
        "group Slack +15550177> :react",
        output[7],  # another member reacting to the first one's message
        "group Slack +15550177> :on whatsapp",
        "group WhatsApp +15550177> :voice",
        "bot: voice in group WhatsApp +15550177",
    ]
    assert output[7].startswith("bot: reaction ❤️ on spc-msg-") and output[7].endswith("(hello all)")


def test_a_badly_signed_delivery_is_refused_and_never_stored(settings: Settings) -> None:
    with served(settings, echo_bot()) as (app, url):
        wrong = create_app(
            dataclasses.replace(settings, signing_secrets=("wrong",)), bot=echo_bot()
        )
        output = chat(wrong, url, "hello\n:again\n")
        assert runtime(app).inbox.parked() == []
    assert output[2:] == [
        "direct iMessage +15550100> hello",
        "app: 401 signature does not match any configured secret",
        "direct iMessage +15550100> :again",
        "app: 401 signature does not match any configured secret",
    ]


def test_every_reply_the_bot_sends_is_shown_and_later_ones_when_they_come(
    settings: Settings, tmp_path: Path
) -> None:
    bot = Bot()

    @bot.on(Text)
    def everything(ctx: Context, text: Text) -> list[Any]:
        return [
            "Plain",
            Markdown("**bold**"),
            React("like"),
            Threaded("in a thread"),
            File(b"%PDF", name="report.pdf"),
            ContactCard("Ada Lovelace", phones=["+15550101"]),
            Link("https://example.com"),
            Say("Working on it", tag="status"),
            Edit("status", "Done"),
            Later(1, "Time to stretch!"),
        ]

    with served(settings, bot) as (app, url):
        output = chat(app, url, "go\n:wait 10\n:wait\n")
    assert output[2:11] == [
        "direct iMessage +15550100> go",
        "bot: Plain",
        "bot: **bold**  (markdown)",
        "bot reacted 👍 to “go”",
        "bot, in the thread of “go”: in a thread",
        "bot: [file report.pdf, application/pdf, 4 B]",
        "bot: [contact Ada Lovelace, +15550101]",
        "bot: [link https://example.com]",
        "bot: Working on it  #status",
    ]
    assert output[11] == "bot edited #status: Done"
    assert output[12].startswith("bot will send in 1 s (at ") and output[12].endswith(
        "Time to stretch!"
    )
    assert output[13] == "(a dry run: the app logs its replies instead of sending them)"
    # It comes during `:wait 10`, or just before its prompt on a slow machine.
    assert sorted(output[14:17]) == [
        "bot (later): Time to stretch!",
        "direct iMessage +15550100> :wait",
        "direct iMessage +15550100> :wait 10",
    ]
    assert output[17:] == ["nothing to wait for"]


def test_a_bot_that_raises_shows_each_attempt_then_parked(settings: Settings) -> None:
    bot = Bot()

    @bot.on(Text)
    def broken(ctx: Context, text: Text) -> str:
        raise RuntimeError("the weather API is down")

    with served(dataclasses.replace(settings, max_attempts=2), bot) as (app, url):
        output = chat(app, url, "weather?\n")
    assert output[2:] == [
        "direct iMessage +15550100> weather?",
        "bot failed (attempt 1): RuntimeError: the weather API is down; trying again",
        "bot failed, parked after 2 attempts: RuntimeError: the weather API is down",
    ]


def test_an_app_that_is_not_running_is_one_line_naming_make_run(app: Flask) -> None:
    url = f"http://127.0.0.1:{unused_port()}{WEBHOOK_PATH}"
    output = chat(app, url, "hello\n")
    down = f"cannot reach {url} (["
    assert output[2].startswith(down) and output[2].endswith(
        "start the app first (`make dev` or `make run`) or pass --url."
    )
    assert output[3:] == ["direct iMessage +15550100> hello", output[2]]


def test_a_message_nobody_handles_says_so_and_is_shown_when_it_is(settings: Settings) -> None:
    with served(settings, echo_bot(), worker=False) as (app, url):
        lines = iter(["hello", "", "", None])
        shown: list[str] = []
        current = runtime(app)

        def read(prompt: str) -> str | None:
            line = next(lines)
            if line == "" and current.bot_threads is not None:
                current.bot_threads.start()  # the worker comes up, and handles it
                wait_until(lambda: not any(current.inbox.counts().values()), timeout=10)
            shown.append(f"{prompt}{line}")
            return line

        conversation = Conversation()
        Chat(url, settings.signing_secrets, current.inbox, conversation, 0.3, out=shown.append).run(
            read
        )
    assert shown[2:5] == [
        "direct iMessage +15550100> hello",
        "still pending after 0.3s: is the app's worker running? (:wait follows it)",
        "direct iMessage +15550100> ",
    ]
    assert shown[5] == "bot: You said: hello"


class Interrupting:
    """An inbox whose first read is interrupted, as Ctrl-C does while the chat waits."""

    def __init__(self) -> None:
        self.reads = 0

    def status(self, message_id: str) -> Status:
        self.reads += 1
        if self.reads == 1:
            raise KeyboardInterrupt
        return Status(message_id, "pending", 0, None)


def test_ctrl_c_stops_waiting_then_ends_the_chat_and_ctrl_d_ends_it(settings: Settings) -> None:
    with served(settings, echo_bot()) as (app, url):
        shown: list[str] = []
        typed = iter(["hello"])

        def read(prompt: str) -> str | None:
            line = next(typed, None)
            if line is None:
                raise KeyboardInterrupt
            return line

        session = Chat(url, settings.signing_secrets, Interrupting(), out=shown.append)  # type: ignore[arg-type]
        session.run(read)
        assert shown[2:] == ["(stopped waiting: Enter or :wait shows what comes)", ""]
        assert len(session.watches) == 1  # still followed, from the next prompt on

        # The input ends (Ctrl-D) without :quit.
        output = chat(app, url, "hello\n")
    assert output[-2:] == [
        "bot: You said: hello",
        "(a dry run: the app logs its replies instead of sending them)",
    ]


def test_the_command_is_there_and_checks_its_options(app: Flask) -> None:
    runner = app.test_cli_runner()
    assert "chat" in runner.invoke(args=["spectrum", "--help"]).output
    help_text = runner.invoke(args=["spectrum", "chat", "--help"]).output
    assert ":attach [FILE]" in help_text and "--sender" in help_text
    for args, error in [
        (["--url", "notaurl"], "'notaurl' is not an http(s) URL"),
        (["--sender", ""], "a sender id is one word"),
        (["--timeout", "nan"], "is not a number of seconds"),
        (["--timeout", "-1"], "is not a number of seconds"),
    ]:
        result = runner.invoke(args=["spectrum", "chat", *args])
        assert result.exit_code == 2 and error in result.output, result.output
{%- if cookiecutter.inbox == "redis" %}


def test_with_redis_the_chat_waits_for_a_worker(settings: Settings, redis_server: str) -> None:
    """The chat reads the Redis inbox, where `flask spectrum worker` records outcomes."""
    with served(dataclasses.replace(settings, redis_url=redis_server), echo_bot()) as (app, url):
        current = runtime(app)
        current.inbox.connection.flushdb()
        lines = iter(["through Redis", "", None])
        shown: list[str] = []

        def read(prompt: str) -> str | None:
            line = next(lines)
            if line == "":  # a worker comes and handles what is queued
                result = app.test_cli_runner().invoke(args=["spectrum", "worker", "--burst"])
                assert result.exit_code == 0, result.output
            shown.append(f"{prompt}{line}")
            return line

        chat = Chat(url, settings.signing_secrets, current.inbox, timeout=0.3, out=shown.append)
        chat.worker = "`make worker`"
        chat.run(read)
    assert shown[2:6] == [
        "direct iMessage +15550100> through Redis",
        "still pending after 0.3s: is `make worker` running? (:wait follows it)",
        "direct iMessage +15550100> ",
        "bot: You said: through Redis",
    ]
{%- endif %}
