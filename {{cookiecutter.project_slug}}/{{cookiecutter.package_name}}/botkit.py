"""What `bot.py` is built with: `Bot`, which routes each message to one handler.

    @bot.command("weather")      "/weather paris"        handler(ctx, Command)
    @bot.text("thanks")          a text containing it    handler(ctx, re.Match)
    @bot.text(re.compile(...))   a text it matches       handler(ctx, re.Match)
    @bot.on(Attachment, Voice)   those content types     handler(ctx, the content)
    @bot.otherwise               anything else           handler(ctx, the content)

Every route takes filters: `chat="direct"` or `"group"`, `platform=` and `sender=`
(a value or several), and `when=` (a function of the context). The first route
that matches wins, in the order the routes are registered; `otherwise` runs when
none does. Registering a route that can never run, because one before it takes
every message it would, fails at import with a message saying which.

A handler gets a `Context` (the message, its conversation's `state`, the attempt
number) and returns its replies: a text, or any value of `replies.py` (React,
Markdown, File, Threaded, Later ...), a list of them, or None. Once a handler
has taken a second (SPECTRUM_TYPING_AFTER), the chat shows "typing..." until it
returns; `typing=False` on a route turns that off for its handler.
"""

from __future__ import annotations

import contextlib
import inspect
import re
import shlex
from collections.abc import Callable, Collection, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from .events import Attachment, ChatKind, Content, Message, Sender, Space, Text, Voice
from .replies import Files, React, Reply, to_contents
from .state import State, Transaction, conversation_scope, sender_scope

__all__ = ["Bot", "Command", "Context", "React", "Reply"]

Handler = Callable[["Context", Any], Reply | Iterable[Reply] | None]
H = TypeVar("H", bound=Callable[..., Any])

_COMMAND_NAME = re.compile(r"[a-z0-9_][a-z0-9_-]*")


@dataclass(frozen=True)
class Command:
    """`/weather paris`: name "weather", args "paris"."""

    name: str
    args: str

    @property
    def argv(self) -> list[str]:
        """The arguments split like a shell would ("a b" stays one), or on spaces."""
        try:
            return shlex.split(self.args)
        except ValueError:  # an unbalanced quote: chat is not a shell
            return self.args.split()


class Context:
    """One message being handled, and what its handler may use."""

    def __init__(
        self,
        message: Message,
        transaction: Transaction,
        attempt: int = 1,
        *,
        fetch: Callable[[str], bytes] | None = None,
    ) -> None:
        self.message = message
        self.attempt = attempt  # 1 the first time; more after a failure or a crash
        self.state = State(transaction, conversation_scope(message))
        self.sender_state = State(transaction, sender_scope(message))
        self.transaction = transaction
        self._fetch = fetch

    def read(self, content: Attachment | Voice) -> bytes:
        """The bytes of an attachment or voice note received (Spectrum sends only its id).

        Fetched through the SDK (iMessage only in spectrum-ts 12.8.0), at most
        SPECTRUM_ATTACHMENT_MAX_BYTES.
        """
        if not isinstance(content, Attachment | Voice) or not content.id:
            raise TypeError(f"ctx.read takes an Attachment or Voice with an id, not {content!r}")
        if self._fetch is None:
            raise RuntimeError(
                "no way to fetch attachments here (Conversation(files=...) in tests)"
            )
        return self._fetch(content.id)

    def sent(self, tag: str) -> str | None:
        """The platform id of the last message sent with this tag in this conversation."""
        found = self.state.get(f"@sent:{tag}")
        return str(found) if found is not None else None

    @property
    def content(self) -> Content:
        return self.message.content

    @property
    def text(self) -> str:
        """The text of a Text message, else ""."""
        return self.content.text if isinstance(self.content, Text) else ""

    @property
    def space(self) -> Space:
        return self.message.space

    @property
    def sender(self) -> Sender | None:
        return self.message.sender

    @property
    def platform(self) -> str | None:
        return self.message.platform

    @property
    def is_group(self) -> bool:
        return self.message.space.is_group

    @property
    def idempotency_key(self) -> str:
        """The same on every attempt at this message: pass it to APIs that take one."""
        return self.message.id


@dataclass(frozen=True)
class Filters:
    chat: ChatKind | None = None
    platforms: frozenset[str] | None = None  # casefolded
    senders: frozenset[str] | Callable[[Sender | None], bool] | None = None
    when: Callable[[Context], bool] | None = None

    def admit(self, ctx: Context) -> bool:
        if self.chat is not None and ctx.space.kind is not self.chat:
            return False
        if self.platforms is not None and (ctx.platform or "").casefold() not in self.platforms:
            return False
        if callable(self.senders) and not self.senders(ctx.sender):
            return False
        if isinstance(self.senders, frozenset) and (
            ctx.sender is None or ctx.sender.id not in self.senders
        ):
            return False
        return self.when is None or bool(self.when(ctx))

    def covers(self, other: Filters) -> bool:
        """True if these filters admit every message `other` admits."""
        return (
            (self.chat is None or self.chat is other.chat)
            and _covers(self.platforms, other.platforms)
            and _covers(self.senders, other.senders)
            and (self.when is None or self.when is other.when)
        )


def _covers(mine: Any, theirs: Any) -> bool:
    if mine is None:
        return True
    if isinstance(mine, frozenset) and isinstance(theirs, frozenset):
        return theirs <= mine
    return mine is theirs


@dataclass(frozen=True)
class Route:
    handler: Handler
    filters: Filters
    commands: frozenset[str] = frozenset()
    pattern: re.Pattern[str] | None = None
    types: tuple[type[Content], ...] = ()
    typing: bool = True  # show "typing..." while a slow handler runs

    @property
    def takes(self) -> str:
        if self.commands:
            return "/" + ", /".join(sorted(self.commands))
        if self.pattern is not None:
            return f"text matching {self.pattern.pattern!r}"
        return ", ".join(t.__name__ for t in self.types)

    def match(self, ctx: Context) -> tuple[bool, Any]:
        """(True, what the handler gets) if this route takes the message."""
        found: Any = None
        if self.commands:
            found = _command(ctx.content)
            found = found if found is not None and found.name in self.commands else None
        elif self.pattern is not None:
            found = self.pattern.search(ctx.text) if isinstance(ctx.content, Text) else None
        elif isinstance(ctx.content, self.types):
            found = ctx.content
        return (found is not None and self.filters.admit(ctx)), found

    def shadows(self, later: Route) -> bool:
        """True if this route takes every message `later` would: `later` can never run."""
        if not self.filters.covers(later.filters):
            return False
        if self.types:  # commands and patterns only ever match Text
            taken = later.types or (Text,)
            return all(issubclass(t, self.types) for t in taken)
        if self.commands:
            return bool(later.commands) and later.commands <= self.commands
        assert self.pattern is not None
        return later.pattern is not None and (
            (later.pattern.pattern, later.pattern.flags)
            == (self.pattern.pattern, self.pattern.flags)
        )


def _command(content: Content) -> Command | None:
    if not isinstance(content, Text):
        return None
    text = content.text.strip()
    if not text.startswith("/"):
        return None
    word, _, args = text[1:].partition(" ")
    name = word.split("@", 1)[0].casefold()  # "/weather@MyBot" in Telegram groups
    return Command(name, args.strip()) if _COMMAND_NAME.fullmatch(name) else None


class Bot:
    """The routes of a bot, and `handle`, which runs the one a message takes."""

    def __init__(self) -> None:
        self.routes: list[Route] = []
        self.fallback: Handler | None = None

    def command(self, *names: str, **filters: Any) -> Callable[[H], H]:
        """Route `/name args` texts (any of `names`) to the decorated handler(ctx, Command)."""
        if not names or any(callable(n) for n in names):
            raise TypeError('use @bot.command("name"), with the command\'s name')
        cleaned = frozenset(n.removeprefix("/").casefold() for n in names)
        for name in cleaned:
            if not _COMMAND_NAME.fullmatch(name):
                raise ValueError(
                    f"bot.command({name!r}): a command is letters, digits, _ and - (no spaces)"
                )
        return self._register(filters, commands=cleaned)

    def text(self, pattern: str | re.Pattern[str], **filters: Any) -> Callable[[H], H]:
        """Route texts to the decorated handler(ctx, re.Match).

        A string matches a text containing it, ignoring case; a compiled regex is
        searched in the text (`re.search`), its flags as given.
        """
        if isinstance(pattern, str):
            if not pattern:
                raise ValueError("bot.text(''): an empty pattern matches every text")
            pattern = re.compile(re.escape(pattern), re.IGNORECASE)
        if not isinstance(pattern, re.Pattern):
            raise TypeError('use @bot.text("words") or @bot.text(re.compile(...))')
        if pattern.search("") is not None:
            raise ValueError(
                f"bot.text({pattern.pattern!r}) matches an empty text, so every text: "
                "use @bot.on(Text) for a handler that takes all of them"
            )
        return self._register(filters, pattern=pattern)

    def on(self, *types: type[Content], **filters: Any) -> Callable[[H], H]:
        """Route messages of these content types to the decorated handler(ctx, content)."""
        if not types or any(not isinstance(t, type) for t in types):
            raise TypeError("use @bot.on(Text) with one or more content types from events.py")
        for kind in types:
            if not issubclass(kind, Content):
                raise TypeError(
                    f"bot.on({kind.__name__}): not a content type; use one from events.py "
                    "(Text, Attachment, Voice, Contact, RichLink, Reaction, ThreadReply, "
                    "Album, Unknown)"
                )
        return self._register(filters, types=types)

    def otherwise(self, handler: H) -> H:
        """Register the handler(ctx, content) for messages no route takes."""
        _check_handler(handler)
        if self.fallback is not None:
            raise ValueError(
                f"bot.otherwise is already {_where(self.fallback)}; {_where(handler)} would "
                "replace it: keep one"
            )
        self.fallback = handler
        return handler

    def _register(self, filters: dict[str, Any], **key: Any) -> Callable[[H], H]:
        typing = filters.pop("typing", True)
        parsed = _filters(**filters)

        def register(handler: H) -> H:
            _check_handler(handler)
            route = Route(handler, parsed, typing=bool(typing), **key)
            for earlier in self.routes:
                if earlier.shadows(route):
                    raise ValueError(
                        f"{_where(handler)} can never run: {_where(earlier.handler)}, "
                        f"registered before it, takes every message it would "
                        f"({earlier.takes}). Register {handler.__name__} first, or narrow "
                        f"{earlier.handler.__name__} with chat=, platform=, sender= or when=."
                    )
            self.routes.append(route)
            return handler

        return register

    def route(self, ctx: Context) -> tuple[Handler, Any, bool] | None:
        """The handler this message goes to, what it gets, and whether "typing..." may show."""
        for route in self.routes:
            taken, found = route.match(ctx)
            if taken:
                return route.handler, found, route.typing
        if self.fallback is not None:
            return self.fallback, ctx.content, True
        return None

    def handle(
        self,
        ctx: Context,
        files: Files,
        typing: Callable[[], AbstractContextManager[object]] | None = None,
    ) -> list[dict[str, Any]]:
        """Run the handler the message goes to; its replies as plain data for the inbox."""
        chosen = self.route(ctx)
        if chosen is None:
            return []
        handler, found, shows_typing = chosen
        with typing() if typing and shows_typing else contextlib.nullcontext():
            result = handler(ctx, found)
        try:
            return to_contents(result, ctx.message.id, files)
        except TypeError as exc:
            raise TypeError(f"handler {_where(handler)} returned {exc}") from None


def _filters(
    chat: str | ChatKind | None = None,
    platform: str | Collection[str] | None = None,
    sender: str | Collection[str] | Callable[[Sender | None], bool] | None = None,
    when: Callable[[Context], bool] | None = None,
) -> Filters:
    if chat is not None and chat not in {k.value for k in ChatKind}:
        raise ValueError(f'chat={chat!r}: use chat="direct" or chat="group"')
    if when is not None and not callable(when):
        raise TypeError("when= takes a function of the context, e.g. when=lambda ctx: ...")
    return Filters(
        chat=ChatKind(chat) if chat is not None else None,
        platforms=_names(platform, "platform", casefold=True),
        senders=sender if callable(sender) else _names(sender, "sender"),
        when=when,
    )


def _names(value: Any, what: str, casefold: bool = False) -> frozenset[str] | None:
    if value is None:
        return None
    names = [value] if isinstance(value, str) else list(value)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise TypeError(f"{what}= takes a name or a list of names, got {value!r}")
    return frozenset(n.casefold() if casefold else n for n in names)


def _check_handler(handler: Any) -> None:
    if not callable(handler):
        raise TypeError(f"{handler!r} is not a function: decorate the handler itself")
    if inspect.iscoroutinefunction(handler):
        raise TypeError(
            f"{_where(handler)} is async: handlers run in a worker thread, use a plain def"
        )
    try:
        inspect.signature(handler).bind(None, None)
    except TypeError:
        raise TypeError(
            f"{_where(handler)} must take two arguments: (ctx, what it matched)"
        ) from None
    except ValueError:  # a builtin without a signature: let it be tried
        pass


def _where(handler: Any) -> str:
    """`name (bot.py:12)`, for messages about a handler."""
    name = getattr(handler, "__name__", repr(handler))
    code = getattr(handler, "__code__", None)
    if code is None:
        return name
    return f"{name} ({Path(code.co_filename).name}:{code.co_firstlineno})"
