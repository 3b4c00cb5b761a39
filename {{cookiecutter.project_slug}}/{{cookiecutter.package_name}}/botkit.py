"""What `bot.py` is built with: `Bot`, which routes each message to its handler,
and `React`, a reply that reacts to the message being handled."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from .events import Content, Message


@dataclass(frozen=True)
class React:
    """A reply that reacts to the message being handled, e.g. `React("❤️")`."""

    emoji: str


C = TypeVar("C", bound=Content)
Reply = str | React
# A handler gets the message and its (typed) content and returns what to send back:
# a text, a React, a list of them, or None for no reply.
Handler = Callable[[Message, Any], Reply | Iterable[Reply] | None]


class Bot:
    """A registry of handlers, one per content type, plus an optional fallback."""

    def __init__(self) -> None:
        self._handlers: dict[type[Content], Handler] = {}
        self._fallback: Handler | None = None

    def on(
        self, *kinds: type[C]
    ) -> Callable[[Callable[[Message, C], Any]], Callable[[Message, C], Any]]:
        """Register the decorated function for one or more content types."""

        def register(handler: Callable[[Message, C], Any]) -> Callable[[Message, C], Any]:
            for kind in kinds:
                if kind in self._handlers:
                    raise ValueError(f"a handler for {kind.__name__} is already registered")
                self._handlers[kind] = handler
            return handler

        return register

    def otherwise(self, handler: Handler) -> Handler:
        """Register the handler for every content type that has no handler of its own."""
        self._fallback = handler
        return handler

    def handle(self, message: Message) -> list[dict[str, str]]:
        """Run the matching handler; return its replies as content for the sender."""
        handler = self._handlers.get(type(message.content), self._fallback)
        if handler is None:
            return []
        result = handler(message, message.content)
        if result is None:
            return []
        replies = [result] if isinstance(result, str | React) else list(result)
        return [to_content(r, message, handler) for r in replies if r]


def to_content(reply: Any, message: Message, handler: Handler) -> dict[str, str]:
    """A reply as plain data: it is stored before it is sent, and sent by Node."""
    if isinstance(reply, str):
        return {"type": "text", "text": reply}
    if isinstance(reply, React):
        return {"type": "reaction", "emoji": reply.emoji, "target": message.id}
    raise TypeError(
        f"handler {handler.__name__} returned {type(reply).__name__}: "
        "return a str, a React, a list of them, or None"
    )
