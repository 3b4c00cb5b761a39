"""Conversation state: what a handler remembers between messages.

`ctx.state` is a small key-value store scoped to the conversation, and
`ctx.sender_state` to the sender within it. Values are JSON; an entry may expire.
They live in the inbox's own store (the SQLite file, or Redis), so every web
process, thread and RQ worker sees the same state.

A handler's changes are buffered in a `Transaction` and committed together with
its replies, in one write, when it returns. If it raises, times out or its
process dies, nothing it changed is visible, and its retry sees the state as it
was before. Reads note the version of what they read; the commit refuses to
apply changes over a version that moved meanwhile (`StateConflict`), and the
handler is run again on the new state. With conversations in order (the
default) that only happens when two conversations share a sender's state.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from .events import Message, Space

Key = tuple[str, str]  # (scope, name)


class StateConflict(Exception):
    """State this handler read was changed by another handler before it returned."""


@dataclass(frozen=True)
class Entry:
    """A stored key: its value, and a version that grows with every write.

    A deleted key keeps its version (with `present` False), so a handler that read
    the old value still sees that it changed.
    """

    value: Any
    version: int
    expires_at: float | None = None
    present: bool = True

    def live(self, now: float) -> bool:
        return self.present and (self.expires_at is None or self.expires_at > now)


class Reader(Protocol):
    """What a store offers a handler while it runs: the committed entry, if any."""

    def read_state(self, scope: str, name: str) -> Entry | None: ...


@dataclass
class Changes:
    """What a handler did to state: the versions it read and what it wrote."""

    # The version each key had when first read (0: absent); a commit checks them.
    read: dict[Key, int] = field(default_factory=dict)
    # New JSON text and expiry for each key written; None deletes it.
    written: dict[Key, tuple[str, float | None] | None] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.written)


def conversation_scope(message: Message) -> str:
    """The conversation a message belongs to: its space, on its platform."""
    return conversation_scope_of(message.space)


def conversation_scope_of(space: Space) -> str:
    return f"{(space.platform or '').casefold()}|{space.id}"


def sender_scope(message: Message) -> str:
    sender = message.sender.id if message.sender else ""
    return f"{conversation_scope(message)}|{sender}"


class Transaction:
    """One handler run's view of state: committed values, then its own changes."""

    def __init__(self, reader: Reader, now: float | None = None) -> None:
        self.reader = reader
        self.now = time.time() if now is None else now
        self.changes = Changes()
        self._seen: dict[Key, Any] = {}  # the value each key has for this handler

    def get(self, key: Key) -> Any:
        if key not in self._seen:
            entry = self.reader.read_state(*key)
            self.changes.read.setdefault(key, entry.version if entry else 0)
            self._seen[key] = entry.value if entry and entry.live(self.now) else _ABSENT
        return self._seen[key]

    def put(self, key: Key, value: Any, ttl: float | None) -> None:
        try:
            text = json.dumps(value, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"state values must be JSON: {key[1]!r} = {value!r} ({exc})") from None
        self.get(key)  # note the version it replaces
        self._seen[key] = json.loads(text)
        self.changes.written[key] = (text, self.now + ttl if ttl is not None else None)

    def delete(self, key: Key) -> None:
        self.get(key)
        self._seen[key] = _ABSENT
        self.changes.written[key] = None


_ABSENT: Any = object()


class State:
    """A dict-like view of one scope's state; see the module docstring.

    Values come back as copies: change a list you read, then assign it again.
    """

    def __init__(self, transaction: Transaction, scope: str) -> None:
        self._tx = transaction
        self._scope = scope

    def get(self, name: str, default: Any = None) -> Any:
        value = self._tx.get((self._scope, name))
        return default if value is _ABSENT else copy.deepcopy(value)

    def set(self, name: str, value: Any, *, ttl: float | None = None) -> None:
        """Keep `value` (JSON) under `name`; with `ttl`, for that many seconds only."""
        if ttl is not None and ttl <= 0:
            raise ValueError(f"ttl must be positive, got {ttl!r}")
        self._tx.put((self._scope, name), value, ttl)

    def update(self, values: dict[str, Any] | None = None, /, **more: Any) -> None:
        for name, value in {**(values or {}), **more}.items():
            if value is None:
                self.pop(name)
            else:
                self.set(name, value)

    def pop(self, name: str, default: Any = None) -> Any:
        value = self.get(name, _ABSENT)
        if value is _ABSENT:
            return default
        self._tx.delete((self._scope, name))
        return value

    def __getitem__(self, name: str) -> Any:
        value = self.get(name, _ABSENT)
        if value is _ABSENT:
            raise KeyError(name)
        return value

    def __setitem__(self, name: str, value: Any) -> None:
        self.set(name, value)

    def __delitem__(self, name: str) -> None:
        if self.pop(name, _ABSENT) is _ABSENT:
            raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name, _ABSENT) is not _ABSENT

    def __iter__(self) -> Iterator[str]:
        raise TypeError("state cannot be listed: read the names you keep with get()")


class MemoryStore:
    """State kept in this process only: for running a bot's handlers in tests."""

    def __init__(self) -> None:
        self.entries: dict[Key, Entry] = {}

    def read_state(self, scope: str, name: str) -> Entry | None:
        return self.entries.get((scope, name))

    def commit(self, changes: Changes) -> None:
        for key, version in changes.read.items():
            current = self.entries.get(key)
            if (current.version if current else 0) != version:
                raise StateConflict(f"{key[1]!r} changed meanwhile")
        for key, written in changes.written.items():
            version = changes.read.get(key, 0) + 1
            if written is None:
                self.entries[key] = Entry(None, version, present=False)
            else:
                self.entries[key] = Entry(json.loads(written[0]), version, written[1])
