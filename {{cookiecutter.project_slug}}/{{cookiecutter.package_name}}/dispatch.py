"""The plumbing behind `bot.py`: route a message to the handler for its content type."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from .events import Content, Message

C = TypeVar("C", bound=Content)
# A handler gets the message and its (typed) content and returns what to send back:
# a string, several strings, or None for no reply.
Handler = Callable[[Message, Any], str | Iterable[str] | None]


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

    def handle(self, message: Message) -> list[str]:
        """Run the matching handler and return the replies as a list of texts."""
        handler = self._handlers.get(type(message.content), self._fallback)
        if handler is None:
            return []
        result = handler(message, message.content)
        if result is None:
            return []
        if isinstance(result, str):
            return [result] if result else []
        replies = list(result)
        if not all(isinstance(r, str) for r in replies):
            raise TypeError(f"handler {handler.__name__} must return str, list of str or None")
        return [r for r in replies if r]
