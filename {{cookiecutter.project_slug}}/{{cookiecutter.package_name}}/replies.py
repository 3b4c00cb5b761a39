"""What a handler can send back, as plain values.

    return "Hi!"                                  a text
    return Markdown("**Done**")                   formatted text (plain where unsupported)
    return React("❤️") / React("love")            a reaction to the message being handled
    return Threaded("Answer here")                a reply in that message's thread
    return File(b"...", name="chart.png")         a file or image: bytes, a path or a URL
    return VoiceNote(Path("memo.m4a"))            a voice note (audio/*)
    return ContactCard("Ada Lovelace", phones=["+15550101"])
    return Link("https://example.com")            a link with its preview
    return Say("Working on it", tag="status")     a text the bot can edit later ...
    return Edit("status", "Done")                 ... edit it (or Unsend("status"))
    return Later(600, "Time to stretch!")         replies sent in ten minutes

A handler returns one of these, a list of them, or None. They are stored before
anything is sent (as the plain data `to_content` makes of them), so a crash or a
retry never loses or repeats one. Files are copied into `instance/files/` first,
named by their SHA-256, so a retry still finds them after the handler's own copy
is gone. A reply's `tag` names the last message sent with it in the
conversation: `Edit`, `Unsend` and `ctx.sent(tag)` use it.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The SDK's named reactions (its `Emoji` table has these six iMessage tapbacks, and
# some 1,900 more names, which the bridge looks up).
TAPBACKS = {
    "love": "❤️",
    "like": "👍",
    "dislike": "👎",
    "laugh": "😂",
    "emphasize": "‼️",
    "question": "❓",
}


@dataclass(frozen=True)
class Say:
    """A plain text; give it a `tag` to edit or unsend it later."""

    text: str
    tag: str | None = None


@dataclass(frozen=True)
class Markdown:
    markdown: str
    tag: str | None = None


@dataclass(frozen=True)
class React:
    """A reaction to the message being handled: an emoji, or a name the SDK knows ("love")."""

    emoji: str
    to: str | None = None  # another message's id, instead of the one being handled


@dataclass(frozen=True)
class Threaded:
    """A reply in the thread of the message being handled (or of the message `to`)."""

    reply: Any  # a text, Markdown, File, VoiceNote, ContactCard or Link
    to: str | None = None
    tag: str | None = None


@dataclass(frozen=True)
class File:
    """A file or an image, from bytes, a path, or an http(s) URL the SDK fetches."""

    source: bytes | Path | str
    name: str | None = None  # the file's name, which also gives its type
    mime_type: str | None = None
    tag: str | None = None


@dataclass(frozen=True)
class VoiceNote:
    """A voice note: audio bytes, a path or a URL (iMessage takes m4a/aac)."""

    source: bytes | Path | str
    name: str | None = None
    mime_type: str | None = None
    duration: float | None = None
    tag: str | None = None


@dataclass(frozen=True)
class ContactCard:
    name: str
    phones: Sequence[str] = ()
    emails: Sequence[str] = ()
    tag: str | None = None


@dataclass(frozen=True)
class Link:
    url: str
    tag: str | None = None


@dataclass(frozen=True)
class Edit:
    """Change the text of a message the bot sent: by its tag, or its platform id."""

    target: str
    text: str


@dataclass(frozen=True)
class Unsend:
    """Take back a message the bot sent: by its tag, or its platform id."""

    target: str


@dataclass(frozen=True)
class Later:
    """Send these replies after `seconds`, kept in the inbox meanwhile (a restart keeps them)."""

    seconds: float
    replies: tuple[Any, ...]

    def __init__(self, seconds: float, *replies: Any) -> None:
        if not seconds >= 0:
            raise ValueError(f"Later({seconds!r}, ...): a delay in seconds, 0 or more")
        if not replies:
            raise ValueError("Later(seconds, ...) needs at least one reply to send")
        object.__setattr__(self, "seconds", seconds)
        object.__setattr__(self, "replies", replies)


Reply = (
    str | Say | Markdown | React | Threaded | File | VoiceNote | ContactCard | Link | Edit | Unsend
)
REPLY_TYPES = (
    str,
    Say,
    Markdown,
    React,
    Threaded,
    File,
    VoiceNote,
    ContactCard,
    Link,
    Edit,
    Unsend,
)
_THREADABLE = (str, Say, Markdown, File, VoiceNote, ContactCard, Link)


class Files:
    """`instance/files/`: what File and VoiceNote replies send, until they are sent."""

    def __init__(self, folder: Path, max_bytes: int = 100 * 1024 * 1024) -> None:
        self.folder = folder
        self.max_bytes = max_bytes

    def keep(self, data: bytes) -> Path:
        """Store `data` under its SHA-256 (atomically, this user only); its path."""
        if len(data) > self.max_bytes:
            raise ValueError(f"a file of {len(data)} bytes; the largest sent is {self.max_bytes}")
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.folder / hashlib.sha256(data).hexdigest()
        if not path.exists():
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".incoming-")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)  # mkstemp made it 0600
        return path

    def purge(self, older_than: float) -> None:
        """Forget files no retry can still need."""
        if self.folder.is_dir():
            for path in self.folder.iterdir():
                if path.stat().st_mtime < older_than:
                    path.unlink(missing_ok=True)


def to_contents(result: Any, message_id: str, files: Files) -> list[dict[str, Any]]:
    """A handler's result as plain data for the inbox: what is stored, then sent."""
    if result is None:
        return []
    one = isinstance(result, (*REPLY_TYPES, Later)) or not isinstance(result, Iterable)
    items = [result] if one else list(result)
    contents = []
    for item in items:
        if item is None or item == "":
            continue
        if isinstance(item, Later):
            later = [c for r in item.replies for c in to_contents(r, message_id, files)]
            contents.append({"type": "later", "at": time.time() + item.seconds, "replies": later})
        else:
            contents.append(to_content(item, message_id, files))
    return contents


def to_content(reply: Any, message_id: str, files: Files) -> dict[str, Any]:
    """One reply as plain data; a TypeError naming what was wrong, for the handler's author."""
    if isinstance(reply, str):
        return {"type": "text", "text": reply}
    if isinstance(reply, Say):
        return _tagged({"type": "text", "text": reply.text}, reply.tag)
    if isinstance(reply, Markdown):
        return _tagged({"type": "markdown", "markdown": reply.markdown}, reply.tag)
    if isinstance(reply, React):
        emoji = TAPBACKS.get(reply.emoji, reply.emoji)
        return {"type": "reaction", "emoji": emoji, "target": reply.to or message_id}
    if isinstance(reply, Threaded):
        if not isinstance(reply.reply, _THREADABLE):
            raise TypeError(
                f"Threaded({type(reply.reply).__name__}): a text, Markdown, File, VoiceNote, "
                "ContactCard or Link goes in a thread"
            )
        inner = to_content(reply.reply, message_id, files)
        tag = reply.tag or inner.pop("tag", None)
        return _tagged({"type": "reply", "content": inner, "target": reply.to or message_id}, tag)
    if isinstance(reply, File | VoiceNote):
        return _file(reply, files)
    if isinstance(reply, ContactCard):
        card = {"type": "contact", "name": reply.name, "phones": list(reply.phones)}
        return _tagged({**card, "emails": list(reply.emails)}, reply.tag)
    if isinstance(reply, Link):
        if not reply.url.startswith(("http://", "https://")):
            raise TypeError(f"Link({reply.url!r}): an http(s):// URL")
        return _tagged({"type": "richlink", "url": reply.url}, reply.tag)
    if isinstance(reply, Edit):
        return {"type": "edit", "target": reply.target, "text": reply.text}
    if isinstance(reply, Unsend):
        return {"type": "unsend", "target": reply.target}
    raise TypeError(
        f"{type(reply).__name__!r}, which is not a reply: return a str, one of the values "
        "in replies.py (React, Markdown, File ...), a list of them, or None"
    )


def _tagged(content: dict[str, Any], tag: str | None) -> dict[str, Any]:
    return {**content, "tag": tag} if tag else content


def _file(reply: File | VoiceNote, files: Files) -> dict[str, Any]:
    kind = "voice" if isinstance(reply, VoiceNote) else "file"
    source = reply.source
    name: str | None
    if isinstance(source, str) and source.startswith(("http://", "https://")):
        name = reply.name or Path(source.split("?", 1)[0]).name
        found: dict[str, Any] = {"url": source}
    else:
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
        name = reply.name or (Path(source).name if not isinstance(source, bytes) else None)
        kept = files.keep(data)
        found = {"path": str(kept), "size": len(data), "sha256": kept.name}
    mime = reply.mime_type or (mimetypes.guess_type(name)[0] if name else None)
    if mime is None:
        raise TypeError(f"{kind} {name or '(bytes)'}: give name= with an extension, or mime_type=")
    if kind == "voice" and not mime.startswith("audio/"):
        raise TypeError(f"a voice note is audio/*, not {mime}")
    extra = {"duration": reply.duration} if isinstance(reply, VoiceNote) and reply.duration else {}
    content = {"type": kind, "name": name or "attachment", "mimeType": mime, **found, **extra}
    return _tagged(content, reply.tag)
