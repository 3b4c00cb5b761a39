"""The test kit (testing.py): both modes give the same replies, the real one through the app."""

from __future__ import annotations

import pytest

from {{ cookiecutter.package_name }}.botkit import Bot, Command, Context, React
from {{ cookiecutter.package_name }}.events import Attachment, Text
from {{ cookiecutter.package_name }}.replies import Later, Say
from {{ cookiecutter.package_name }}.testing import BotFailed, Conversation


def kit_bot() -> Bot:
    bot = Bot()

    @bot.command("count")
    def count(ctx: Context, command: Command) -> str:
        ctx.state["n"] = ctx.state.get("n", 0) + 1
        return f"{ctx.state['n']} in {ctx.message.space.id}"

    @bot.command("later")
    def later(ctx: Context, command: Command) -> Later:
        return Later(60, "a minute on")

    @bot.command("tagged")
    def tagged(ctx: Context, command: Command) -> list[Say | str]:
        return [Say("first", tag="status"), f"before: {ctx.sent('status')}"]

    @bot.command("boom")
    def boom(ctx: Context, command: Command) -> str:
        raise RuntimeError("the weather service is down")

    @bot.on(Attachment)
    def size(ctx: Context, file: Attachment) -> list[React | str]:
        return [React("👀"), f"{len(ctx.read(file))} bytes"]

    @bot.on(Text)
    def echo(ctx: Context, text: Text) -> str:
        return f"{text.text} from {ctx.message.sender.id} on {ctx.message.platform}"

    return bot


@pytest.mark.parametrize("real", [False, True], ids=["direct", "real"])
def test_both_modes_give_the_same_replies(real: bool) -> None:
    chat = Conversation(kit_bot(), real=real, files={"A1": b"12345"}, platform="WhatsApp")
    assert chat.send("hi") == ["hi from +15550100 on WhatsApp"]
    assert chat.send("hi", sender="+15550199") == ["hi from +15550199 on WhatsApp"]
    photo = {"type": "attachment", "id": "A1", "name": "a.png", "mimeType": "image/png"}
    assert chat.send(photo) == [React("👀"), "5 bytes"]
    assert chat.send("/later") == [Later(60, "a minute on")]
    first, second = chat.send("/count"), chat.send("/count")
    assert first[0].startswith("1 in ") and second[0].startswith("2 in ")
    other = chat.another(sender="+15550123")
    assert other.send("/count")[0].startswith("1 in ")  # a conversation of its own


def test_the_real_mode_goes_through_the_webhook_and_the_inbox() -> None:
    chat = Conversation(kit_bot(), real=True)
    assert chat.send("hello") == ["hello from +15550100 on iMessage"]
    assert chat.answer is not None
    status, body = chat.answer
    assert status == 202 and body["status"] == "accepted"
    assert chat.app is not None
    stored = chat.app.runtime.inbox.status(body["message_id"])
    assert stored is not None and stored.state == "done" and stored.attempts == 1
    sent = chat.app.sender.sent
    assert [content for _, content in sent] == [
        {"type": "text", "text": "hello from +15550100 on iMessage"}
    ]


def test_the_real_mode_records_what_was_sent_with_a_tag() -> None:
    chat = Conversation(kit_bot(), real=True)
    chat.send("/tagged")
    replies = chat.send("/tagged")
    assert replies[1].startswith("before: sent-")  # the platform id of the first one


def test_a_failing_bot_raises_its_error() -> None:
    with pytest.raises(RuntimeError, match="the weather service is down"):
        Conversation(kit_bot()).send("/boom")
    with pytest.raises(BotFailed, match="RuntimeError: the weather service is down"):
        Conversation(kit_bot(), real=True).send("/boom")


def test_an_unknown_attachment_says_how_to_give_its_bytes() -> None:
    photo = {"type": "attachment", "id": "A9", "name": "a.png", "mimeType": "image/png"}
    how = r"'A9': Conversation\(files=\.\.\.\)"
    with pytest.raises(KeyError, match=how):
        Conversation(kit_bot()).send(photo)
    with pytest.raises(BotFailed, match=how):
        Conversation(kit_bot(), real=True).send(photo)
