"""Every kind of reply a handler can return, as stored before it is sent."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.botkit import Bot
from {{ cookiecutter.package_name }}.events import Attachment, Text, Voice
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
from {{ cookiecutter.package_name }}.testing import Conversation


@pytest.fixture
def files(tmp_path: Path) -> Files:
    return Files(tmp_path / "files")


def test_each_kind_as_plain_data(files: Files, tmp_path: Path) -> None:
    memo = tmp_path / "memo.m4a"
    memo.write_bytes(b"m4a")
    stored = to_contents(
        [
            "hi",
            Say("Working...", tag="status"),
            Markdown("**done**"),
            React("❤️"),
            React("love"),  # the SDK's tapback names
            React("fire", to="m-0"),  # any name in the SDK's Emoji table, resolved by Node
            Threaded("in the thread"),
            Threaded(Markdown("_a_"), to="m-0", tag="answer"),
            File(b"png bytes", name="chart.png"),
            File("https://example.com/report.pdf?x=1"),
            VoiceNote(memo, duration=1.5),
            ContactCard("Ada Lovelace", phones=["+15550101"]),
            Link("https://example.com/post"),
            Edit("status", "Done"),
            Unsend("status"),
        ],
        "m-1",
        files,
    )
    png = hashlib.sha256(b"png bytes").hexdigest()
    assert stored == [
        {"type": "text", "text": "hi"},
        {"type": "text", "text": "Working...", "tag": "status"},
        {"type": "markdown", "markdown": "**done**"},
        {"type": "reaction", "emoji": "❤️", "target": "m-1"},
        {"type": "reaction", "emoji": "❤️", "target": "m-1"},
        {"type": "reaction", "emoji": "fire", "target": "m-0"},
        {"type": "reply", "content": {"type": "text", "text": "in the thread"}, "target": "m-1"},
        {
            "type": "reply",
            "content": {"type": "markdown", "markdown": "_a_"},
            "target": "m-0",
            "tag": "answer",
        },
        {
            "type": "file",
            "name": "chart.png",
            "mimeType": "image/png",
            "path": str(files.folder / png),
            "size": 9,
            "sha256": png,
        },
        {
            "type": "file",
            "name": "report.pdf",
            "mimeType": "application/pdf",
            "url": "https://example.com/report.pdf?x=1",
        },
        {
            "type": "voice",
            "name": "memo.m4a",
            "mimeType": "audio/mp4",
            "path": str(files.folder / hashlib.sha256(b"m4a").hexdigest()),
            "size": 3,
            "sha256": hashlib.sha256(b"m4a").hexdigest(),
            "duration": 1.5,
        },
        {"type": "contact", "name": "Ada Lovelace", "phones": ["+15550101"], "emails": []},
        {"type": "richlink", "url": "https://example.com/post"},
        {"type": "edit", "target": "status", "text": "Done"},
        {"type": "unsend", "target": "status"},
    ]


def test_files_are_kept_by_their_hash_privately_until_purged(files: Files) -> None:
    first = files.keep(b"same")
    assert files.keep(b"same") == first  # content-addressed: one copy
    assert first.stat().st_mode & 0o777 == 0o600
    assert files.folder.stat().st_mode & 0o777 == 0o700
    files.purge(older_than=first.stat().st_mtime + 1)
    assert not first.exists()
    with pytest.raises(ValueError, match="the largest sent is 3"):
        Files(files.folder, max_bytes=3).keep(b"four")


def test_a_file_copied_in_survives_its_original(files: Files, tmp_path: Path) -> None:
    original = tmp_path / "chart.png"
    original.write_bytes(b"chart")
    (stored,) = to_contents(File(original), "m-1", files)
    original.unlink()  # the handler cleaned up; a retry still has the copy
    assert Path(stored["path"]).read_bytes() == b"chart"


def test_later_keeps_its_replies_for_their_time(files: Files) -> None:
    (stored,) = to_contents(Later(600, "stretch!", Markdown("*now*")), "m-1", files)
    assert stored["type"] == "later" and stored["replies"] == [
        {"type": "text", "text": "stretch!"},
        {"type": "markdown", "markdown": "*now*"},
    ]
    with pytest.raises(ValueError, match="a delay in seconds"):
        Later(-1, "x")
    with pytest.raises(ValueError, match="needs at least one reply"):
        Later(5)


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (VoiceNote(b"x", name="a.png"), "a voice note is audio/\\*, not image/png"),
        (File(b"x"), r"file \(bytes\): give name= with an extension, or mime_type="),
        (Link("example.com"), r"Link\('example.com'\): an http\(s\):// URL"),
        (Threaded(React("👍")), r"Threaded\(React\): a text, Markdown, File"),
        (3.5, "'float', which is not a reply"),
    ],
)
def test_mistakes_are_named(files: Files, reply: object, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        to_contents(reply, "m-1", files)


def test_the_test_kit_gives_back_what_the_handler_returned(tmp_path: Path) -> None:
    bot = Bot()

    @bot.on(Attachment)
    def echo_photo(ctx, photo: Attachment):
        data = ctx.read(photo)  # the bytes Spectrum did not send
        return [File(data, name="back.png"), React("love"), Later(60, Say("again?", tag="q"))]

    @bot.on(Voice)
    def transcribe(ctx, voice: Voice):
        return Threaded(f"{len(ctx.read(voice))} bytes of audio")

    @bot.on(Text)
    def status(ctx, text: Text):
        return Edit("q", "never mind") if ctx.sent("q") is None else Unsend("q")

    chat = Conversation(bot, files={"A1": b"photo", "V1": b"voice"})
    photo = {"type": "attachment", "id": "A1", "name": "in.png", "mimeType": "image/png"}
    assert chat.send(photo) == [
        File(b"photo", name="back.png", mime_type="image/png"),
        React("❤️"),
        Later(60, Say("again?", tag="q")),
    ]
    assert chat.send({"type": "voice", "id": "V1", "mimeType": "audio/mp4"}) == [
        Threaded("5 bytes of audio")
    ]
    assert chat.send("hm") == [Edit("q", "never mind")]
    with pytest.raises(KeyError, match="no bytes for attachment 'A2'"):
        chat.send({"type": "attachment", "id": "A2", "mimeType": "image/png"})
