"""`flask spectrum send-test` and `sign`, against a real server on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SECRET, WEBHOOK_PATH, echo_bot, served, unused_port
from flask import Flask

from {{ cookiecutter.package_name }} import create_app, where_it_failed
from {{ cookiecutter.package_name }}.botkit import Bot, Command, Context
from {{ cookiecutter.package_name }}.config import Settings
from {{ cookiecutter.package_name }}.events import Content
from {{ cookiecutter.package_name }}.runtime import runtime
from {{ cookiecutter.package_name }}.samples import text_delivery
from {{ cookiecutter.package_name }}.verify import verify


@pytest.fixture
def live_app(settings: Settings) -> Iterator[tuple[Flask, str]]:
    """The app served over real HTTP, with its worker running, like `make run`."""
    with served(settings, echo_bot()) as live:
        yield live


def test_send_test_shows_what_the_bot_did(live_app: tuple[Flask, str]) -> None:
    app, url = live_app
    result = app.test_cli_runner().invoke(args=["spectrum", "send-test", "hi there", "--url", url])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith('202 {"message_id":"spc-msg-')
    assert lines[1] == "bot replied (dry-run): You said: hi there"


def describing_bot() -> Bot:
    """Replies with what it received: the content type and where it came from."""
    bot = Bot()

    @bot.otherwise
    def describe(ctx: Context, content: Content) -> str:
        message = ctx.message
        sender = message.sender.id if message.sender else "?"
        where = f"{message.space.kind} {message.space.id} from {sender} on {message.platform}"
        return f"{type(content).__name__} in {where}"

    @bot.command("boom")
    def boom(ctx: Context, command: Command) -> str:
        raise RuntimeError("the weather service is down")

    return bot


@pytest.fixture
def describing_app(settings: Settings) -> Iterator[tuple[Flask, str]]:
    with served(settings, describing_bot()) as live:
        yield live


@pytest.mark.parametrize(
    ("args", "received"),
    [
        (["hello"], "Text"),
        (["--kind", "attachment"], "Attachment"),
        (["--kind", "voice", "--file", __file__], "Voice"),
        (["Grace Hopper", "--kind", "contact"], "Contact"),
        (["https://example.com", "--kind", "richlink"], "RichLink"),
        (["--kind", "reaction", "--target", "spc-msg-1", "--emoji", "👍"], "Reaction"),
        (["me too", "--kind", "reply", "--target", "spc-msg-1"], "ThreadReply"),
        (["--kind", "album"], "Album"),
        (["--kind", "unknown"], "Unknown"),
    ],
)
def test_send_test_delivers_every_kind(
    describing_app: tuple[Flask, str], args: list[str], received: str
) -> None:
    app, url = describing_app
    result = app.test_cli_runner().invoke(args=["spectrum", "send-test", *args, "--url", url])
    assert result.exit_code == 0, result.output
    where = "direct any;-;+15550100 from +15550100 on iMessage"
    assert result.output.splitlines()[1] == f"bot replied (dry-run): {received} in {where}"


def test_send_test_in_a_group_from_another_sender_and_platform(
    describing_app: tuple[Flask, str],
) -> None:
    app, url = describing_app
    where = ["--group", "--sender", "+447700900123", "--platform", "WhatsApp", "--url", url]
    result = app.test_cli_runner().invoke(args=["spectrum", "send-test", "hi", *where])
    assert result.exit_code == 0, result.output
    reply = result.output.splitlines()[1]
    assert reply.startswith("bot replied (dry-run): Text in group ")
    assert reply.endswith(" from +447700900123 on WhatsApp")


def test_send_test_delivers_a_json_file(describing_app: tuple[Flask, str], tmp_path: Path) -> None:
    app, url = describing_app
    runner = app.test_cli_runner()
    just_content = tmp_path / "content.json"
    just_content.write_text(json.dumps({"type": "richlink", "url": "https://example.com"}))
    result = runner.invoke(
        args=["spectrum", "send-test", "--json", str(just_content), "--url", url]
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1].startswith("bot replied (dry-run): RichLink in direct")
    whole = tmp_path / "delivery.json"
    payload = text_delivery("hi", message_id="from-a-file", space_id="SMS;-;+15550142")
    whole.write_text(json.dumps(payload))
    result = runner.invoke(args=["spectrum", "send-test", "--json", str(whole), "--url", url])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].startswith('202 {"message_id":"from-a-file"')
    assert "Text in direct SMS;-;+15550142" in result.output.splitlines()[1]


def test_send_test_shows_the_bots_error_and_attempt(describing_app: tuple[Flask, str]) -> None:
    app, url = describing_app
    result = app.test_cli_runner().invoke(args=["spectrum", "send-test", "/boom", "--url", url])
    assert result.exit_code == 1
    assert result.output.splitlines()[1:] == [
        "bot failed on attempt 1 of 5: RuntimeError: the weather service is down",
        "  it will be retried with backoff; the app's log has the traceback",
    ]


def test_send_test_shows_a_parked_message_and_how_to_replay_it(settings: Settings) -> None:
    once = dataclasses.replace(settings, start_worker=True, max_attempts=1)
    with served(once, describing_bot()) as (app, url):
        result = app.test_cli_runner().invoke(args=["spectrum", "send-test", "/boom", "--url", url])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[1] == (
        "bot failed, parked after 1 attempt(s): RuntimeError: the weather service is down"
    )
    message_id = json.loads(lines[0].split(" ", 1)[1])["message_id"]
    assert lines[2] == f"  flask spectrum inbox replay {message_id}  # once fixed"


def test_send_test_says_when_no_worker_picks_it_up(settings: Settings) -> None:
    with served(settings, echo_bot(), worker=False) as (app, url):
        args = ["spectrum", "send-test", "hi", "--url", url, "--timeout", "0.5"]
        result = app.test_cli_runner().invoke(args=args)
    assert result.exit_code == 1
    assert (
        result.output.splitlines()[-1] == "still pending after 0.5s: is the app's worker running?"
    )


def test_send_test_reports_a_refusal(live_app: tuple[Flask, str], settings: Settings) -> None:
    _, url = live_app
    wrong = create_app(dataclasses.replace(settings, signing_secrets=("wrong",)), bot=echo_bot())
    result = wrong.test_cli_runner().invoke(args=["spectrum", "send-test", "hi", "--url", url])
    assert result.exit_code == 1
    assert result.output == '401 {"error":"signature does not match any configured secret"}\n'


def test_send_test_without_a_server_is_one_line(app: Flask) -> None:
    url = f"http://127.0.0.1:{unused_port()}{WEBHOOK_PATH}"
    result = app.test_cli_runner().invoke(args=["spectrum", "send-test", "hi", "--url", url])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: cannot reach {url} (")
    assert result.output.count("\n") == 1


def test_sign_prints_headers_that_verify(app: Flask) -> None:
    body = '{"event":"messages","note":"café"}'.encode()
    result = app.test_cli_runner().invoke(
        args=["spectrum", "sign", "--timestamp", "1700000000"], input=body
    )
    assert result.exit_code == 0
    headers = dict(line.split(": ", 1) for line in result.stdout.splitlines() if ": " in line)
    assert headers["X-Spectrum-Timestamp"] == "1700000000"
    assert verify(body, headers, [SECRET], 1_700_000_000, 300).ok
    assert "curl -sS -X POST" in result.stderr


def test_parked_messages_listed_and_replayed(app: Flask) -> None:
    from {{ cookiecutter.package_name }}.samples import encode, text_delivery

    inbox = runtime(app).inbox
    runner = app.test_cli_runner()
    assert runner.invoke(args=["spectrum", "inbox", "parked"]).output == "no parked messages\n"
    for message_id in ("m-1", "m-2"):
        inbox.accept(message_id, encode(text_delivery("x", message_id=message_id)).decode())
        inbox.retry(inbox.claim(60), "RuntimeError: boom", delay=0, park=True)

    listed = runner.invoke(args=["spectrum", "inbox", "parked"]).output.splitlines()
    assert [line.split()[0] for line in listed] == ["m-1", "m-2"]
    assert listed[0].endswith("attempts=1  RuntimeError: boom")

    result = runner.invoke(args=["spectrum", "inbox", "replay", "m-1", "nope"])
    assert result.exit_code == 1
    assert result.output == "replayed 1 message(s)\nError: not parked, left alone: nope\n"
    assert inbox.status("m-1").state == "pending"
    result = runner.invoke(args=["spectrum", "inbox", "replay", "--all"])
    assert result.output == "replayed 1 message(s)\n"
    assert inbox.parked() == []
    result = runner.invoke(args=["spectrum", "inbox", "replay"])
    assert (
        result.exit_code == 2 and "name the message ids to replay, or pass --all" in result.output
    )


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["send-test", "hi", "--timeout", "-1"], "'-1' is not a number of seconds (0 or more)"),
        (["send-test", "hi", "--timeout", "nan"], "'nan' is not a number of seconds"),
        (["send-test", "hi", "--wait-for-app", "inf"], "'inf' is not a number of seconds"),
        (["send-test", "hi", "--url", "notaurl"], "'notaurl' is not an http(s) URL, e.g. http"),
        (["send-test", "hi", "--url", "file:///etc/passwd"], "is not an http(s) URL"),
        (["send-test", "hi", "--url", "http://[::1/x"], "'http://[::1/x' is not an http(s) URL"),
        (
            ["send-test", "hi", "--url", "http://h:99999/"],
            "'http://h:99999/' is not an http(s) URL",
        ),
        (["send-test"], "give the TEXT to send (or another --kind)"),
        (["send-test", "--kind", "sticker"], "'sticker' is not one of 'text', 'attachment'"),
        (["send-test", "--json", "/nonexistent.json"], "'/nonexistent.json': No such file"),
        (
            ["send-test", "--kind", "attachment", "--file", "/nope.png"],
            "'/nope.png' does not exist",
        ),
        (
            ["send-test", "hi", "--json", "/dev/null"],
            "--json sends the file as it is: give no TEXT",
        ),
        (["sign", "--timestamp", "-5"], "-5 is not in the range x>=0"),
        (["inbox", "parked", "--limit", "99999999999999999999999"], "is not in the range"),
    ],
)
def test_bad_options_are_one_clear_line(app: Flask, args: list[str], error: str) -> None:
    result = app.test_cli_runner().invoke(args=["spectrum", *args])
    assert result.exit_code == 2
    assert error in result.output
    assert "Traceback" not in result.output


def test_replay_of_an_id_that_is_not_text_is_one_line(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["spectrum", "inbox", "replay", "\udcff"])
    assert (result.exit_code, result.output) == (
        1,
        "replayed 0 message(s)\nError: not parked, left alone: \\udcff\n",
    )


def test_sign_with_timestamp_zero_means_zero(app: Flask) -> None:
    result = app.test_cli_runner().invoke(
        args=["spectrum", "sign", "--timestamp", "0"], input=b"{}"
    )
    assert "X-Spectrum-Timestamp: 0\n" in result.stdout


def test_a_broken_bot_py_is_said_in_one_line(tmp_path: Path) -> None:
    """Every `flask spectrum ...` command loads bot.py: a mistake in it is one line."""
    broken = tmp_path / "bot.py"
    broken.write_text("bot = Bot(\n")
    with pytest.raises(SyntaxError) as raised:
        compile(broken.read_text(), str(broken), "exec")
    assert where_it_failed(raised.value).startswith(f"{broken}:1: SyntaxError: ")
    assert where_it_failed(ValueError("no")) == "ValueError: no"
