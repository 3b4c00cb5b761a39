"""Routing, filters, precedence, misuse caught at import, and conversation state."""

from __future__ import annotations

import re

import pytest

from {{ cookiecutter.package_name }}.botkit import Bot, Command, Context, React
from {{ cookiecutter.package_name }}.events import (
    Attachment,
    Contact,
    Content,
    Reaction,
    Text,
    Voice,
)
from {{ cookiecutter.package_name }}.state import MemoryStore, StateConflict, Transaction
from {{ cookiecutter.package_name }}.testing import Conversation


def test_commands_get_their_name_and_arguments() -> None:
    bot, seen = Bot(), []
    bot.command("weather", "w")(lambda ctx, command: seen.append(command))
    chat = Conversation(bot)
    chat.send("/weather paris")
    chat.send("  /W@MyBot   new york ")
    chat.send('/weather "new york" tomorrow')
    chat.send("weather paris")  # no slash: not a command
    chat.send("/weatherman")  # another command
    assert seen == [
        Command("weather", "paris"),
        Command("w", "new york"),
        Command("weather", '"new york" tomorrow'),
    ]
    assert seen[2].argv == ["new york", "tomorrow"]
    assert Command("x", 'it"s').argv == ['it"s']  # an unbalanced quote is not an error


def test_text_patterns_give_the_match() -> None:
    bot = Bot()
    bot.text("thank you")(lambda ctx, match: f"matched {match[0]!r}")
    bot.text(re.compile(r"(\d+) ?(°C|°F)"))(lambda ctx, match: f"{match[1]} in {match[2]}")
    chat = Conversation(bot)
    assert chat.send("Well, THANK YOU!") == ["matched 'THANK YOU'"]
    assert chat.send("it is 21 °C") == ["21 in °C"]
    assert chat.send("nothing here") == []


def test_content_types_and_the_fallback() -> None:
    bot = Bot()
    bot.on(Attachment, Voice)(lambda ctx, content: f"file {type(content).__name__}")
    bot.otherwise(lambda ctx, content: f"other {content.type}")
    chat = Conversation(bot)
    assert chat.send({"type": "attachment", "mimeType": "image/png"}) == ["file Attachment"]
    assert chat.send({"type": "voice", "mimeType": "audio/m4a"}) == ["file Voice"]
    assert chat.send({"type": "future-thing"}) == ["other future-thing"]
    assert chat.send("hi") == ["other text"]


def test_filters_by_chat_platform_sender_and_anything() -> None:
    bot = Bot()
    bot.on(Text, chat="group")(lambda ctx, text: "group")
    bot.on(Text, platform="telegram")(lambda ctx, text: "telegram")
    bot.on(Text, sender=["+1", "+2"])(lambda ctx, text: "a friend")
    bot.on(Text, sender=lambda s: s is not None and s.id.startswith("+44"))(lambda c, t: "uk")
    bot.on(Text, when=lambda ctx: ctx.text.isupper())(lambda ctx, text: "shouting")
    bot.on(Text)(lambda ctx, text: "anyone")
    assert Conversation(bot, chat="group").send("x") == ["group"]
    assert Conversation(bot, platform="Telegram").send("x") == ["telegram"]  # any casing
    assert Conversation(bot, sender="+2").send("x") == ["a friend"]
    assert Conversation(bot, sender="+447700").send("x") == ["uk"]
    assert Conversation(bot).send("HEY") == ["shouting"]
    assert Conversation(bot).send("hey") == ["anyone"]


def test_first_match_wins_in_the_order_registered() -> None:
    bot = Bot()
    bot.on(Text, chat="group")(lambda ctx, text: "group texts come here first")
    bot.command("help")(lambda ctx, command: "help")
    bot.text("help")(lambda ctx, match: "pattern")
    assert Conversation(bot, chat="group").send("/help") == ["group texts come here first"]
    assert Conversation(bot).send("/help") == ["help"]
    assert Conversation(bot).send("I need help") == ["pattern"]


def where(line_of: str) -> str:
    return rf"{line_of} \(test_botkit.py:\d+\)"


@pytest.mark.parametrize(
    ("register", "message"),
    [
        (
            lambda bot: (bot.on(Text)(echo), bot.command("weather")(weather)),
            where("weather") + " can never run: " + where("echo") + ", registered before it,"
            r" takes every message it would \(Text\). Register weather first",
        ),
        (
            lambda bot: (bot.command("weather", "w")(echo), bot.command("w")(weather)),
            r"takes every message it would \(/w, /weather\)",
        ),
        (
            lambda bot: (bot.text("hi")(echo), bot.text("hi")(weather)),
            r"takes every message it would \(text matching 'hi'\)",
        ),
        (
            lambda bot: (bot.on(Attachment, Voice)(echo), bot.on(Voice)(weather)),
            r"takes every message it would \(Attachment, Voice\)",
        ),
        (
            lambda bot: (bot.on(Content)(echo), bot.on(Contact, chat="group")(weather)),
            r"takes every message it would \(Content\)",
        ),
        (
            lambda bot: (bot.on(Text, chat="group")(echo), bot.text("x", chat="group")(weather)),
            "can never run",
        ),
        (lambda bot: bot.on()(echo), r"use @bot.on\(Text\) with one or more content types"),
        (lambda bot: bot.on(echo), r"use @bot.on\(Text\) with one or more content types"),
        (lambda bot: bot.on(str)(echo), r"bot.on\(str\): not a content type"),
        (lambda bot: bot.command(echo), r'use @bot.command\("name"\)'),
        (lambda bot: bot.command("two words")(echo), "a command is letters, digits"),
        (lambda bot: bot.text("")(echo), "an empty pattern matches every text"),
        (lambda bot: bot.text(re.compile(r"\d*"))(echo), r"matches an empty text.*@bot.on\(Text\)"),
        (
            lambda bot: bot.on(Text, chat="dm")(echo),
            'chat=\'dm\': use chat="direct" or chat="group"',
        ),
        (lambda bot: bot.on(Text, platform=[])(echo), "platform= takes a name or a list"),
        (lambda bot: bot.on(Text, when="yes")(echo), "when= takes a function"),
        (lambda bot: bot.on(Text)(lambda ctx: None), "must take two arguments: \\(ctx, what"),
        (lambda bot: bot.on(Text)(async_handler), "is async: handlers run in a worker thread"),
        (
            lambda bot: (bot.otherwise(echo), bot.otherwise(weather)),
            "bot.otherwise is already " + where("echo"),
        ),
    ],
)
def test_misuse_fails_at_import_with_a_clear_message(register, message: str) -> None:
    with pytest.raises((TypeError, ValueError), match=message):
        register(Bot())


def echo(ctx: Context, content: object) -> str:
    return "echo"


def weather(ctx: Context, content: object) -> str:
    return "weather"


async def async_handler(ctx: Context, content: object) -> None:
    pass


def test_narrower_routes_after_broader_filtered_ones_are_fine() -> None:
    bot = Bot()
    bot.command("w", platform="slack")(echo)
    bot.command("w")(weather)  # takes the platforms the first leaves
    bot.on(Text, chat="group")(echo)
    bot.on(Text)(weather)
    assert len(bot.routes) == 4


def test_replies_are_checked() -> None:
    bot = Bot()
    bot.on(Text)(lambda ctx, text: ["one", "", React("👍"), "two"])
    bot.on(Attachment)(lambda ctx, content: [1])
    chat = Conversation(bot)
    assert chat.send("x") == ["one", React("👍"), "two"]
    with pytest.raises(TypeError, match=r"returned 'int', which is not a reply: return a str, one"):
        chat.send({"type": "attachment"})


def test_context_says_where_and_which_attempt() -> None:
    bot, seen = Bot(), []
    bot.otherwise(lambda ctx, content: seen.append(ctx))
    Conversation(bot, chat="group", platform="Slack").send("hey", attempt=3)
    (ctx,) = seen
    assert (ctx.text, ctx.is_group, ctx.platform, ctx.attempt) == ("hey", True, "Slack", 3)
    assert ctx.idempotency_key == ctx.message.id
    assert isinstance(ctx.content, Text) and not isinstance(ctx.content, Reaction)


def counter_bot() -> Bot:
    bot = Bot()

    @bot.on(Text)
    def count(ctx: Context, text: Text) -> str:
        ctx.state["n"] = ctx.state.get("n", 0) + 1
        ctx.sender_state["mine"] = ctx.sender_state.get("mine", 0) + 1
        if text.text == "fail":
            raise RuntimeError("after counting")
        return f"{ctx.state['n']} {ctx.sender_state['mine']}"

    return bot


def test_state_is_per_conversation_and_per_sender() -> None:
    store = MemoryStore()
    group = Conversation(counter_bot(), chat="group", store=store)
    assert group.send("a", sender="+1") == ["1 1"]
    assert group.send("b", sender="+2") == ["2 1"]
    assert group.send("c", sender="+1") == ["3 2"]
    assert Conversation(counter_bot(), store=store).send("d") == ["1 1"]  # another chat


def test_a_handler_that_raises_changes_nothing() -> None:
    chat = Conversation(counter_bot())
    assert chat.send("one") == ["1 1"]
    with pytest.raises(RuntimeError):
        chat.send("fail")
    assert chat.send("two") == ["2 2"]  # as if "fail" had never run


def test_state_values_are_json_copies_and_can_expire() -> None:
    store = MemoryStore()
    transaction = Transaction(store, now=1000.0)
    ctx = Context(Conversation(Bot()).message("x"), transaction)
    ctx.state["list"] = [1, 2]
    ctx.state["list"].append(3)  # a copy: assign it back to keep it
    assert ctx.state["list"] == [1, 2]
    with pytest.raises(TypeError, match="state values must be JSON: 'when'"):
        ctx.state["when"] = object()
    ctx.state.set("code", "1234", ttl=60)
    ctx.state.update(list=None, other="x")  # None deletes
    assert "list" not in ctx.state and ctx.state.pop("other") == "x"
    with pytest.raises(KeyError):
        del ctx.state["missing"]
    with pytest.raises(ValueError, match="ttl must be positive"):
        ctx.state.set("x", 1, ttl=0)
    store.commit(transaction.changes)

    later = Context(ctx.message, Transaction(store, now=1059.0))
    assert later.state.get("code") == "1234"
    expired = Context(ctx.message, Transaction(store, now=1061.0))
    assert expired.state.get("code") is None and "code" not in expired.state


def test_a_commit_over_state_that_moved_is_refused() -> None:
    store = MemoryStore()
    message = Conversation(Bot()).message("x")
    first, second = Transaction(store), Transaction(store)
    Context(message, first).state["n"] = 1
    Context(message, second).state["n"] = 2
    store.commit(first.changes)
    with pytest.raises(StateConflict, match="'n' changed meanwhile"):
        store.commit(second.changes)
    # A delete keeps the version, so a reader of the deleted value sees it moved too.
    third, fourth = Transaction(store), Transaction(store)
    Context(message, third).state.pop("n")
    assert Context(message, fourth).state["n"] == 1
    store.commit(third.changes)
    Context(message, fourth).state["n"] = 5
    with pytest.raises(StateConflict):
        store.commit(fourth.changes)
