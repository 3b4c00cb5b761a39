"""Every kind of reply through the real bridge.mjs and the SDK's own content builders.

The bridge's test mode runs everything for real (the SDK builds each content:
files are read, URLs fetched, MIME types and reaction names checked) except the
final hand-over to the platform, which it records: kind, target, file size and
SHA-256. Reading an inbound attachment replaces only getAttachment's download.
"""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import sent
from test_bridge_node import NODE, SPACE

from {{ cookiecutter.package_name }}.bridge import BridgeRefused, BridgeSender
from {{ cookiecutter.package_name }}.events import Space

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not on PATH: install Node 22")
PNG = b"\x89PNG\r\n\x1a\n" + b"pixels" * 100
WHATSAPP = Space(id="15550100", platform="WhatsApp Business")


@pytest.fixture
def served_file() -> Iterator[str]:
    """A report.pdf on 127.0.0.1, for a file sent by URL (the SDK fetches it)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/pdf")
            self.end_headers()
            self.wfile.write(b"%PDF-1.7 report")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/files/report.pdf"
    server.shutdown()


def test_every_kind_is_built_by_the_sdk_and_handed_over(
    start_bridge, sends: Path, tmp_path: Path, served_file: str
) -> None:
    png = tmp_path / "chart.png"
    png.write_bytes(PNG)
    memo = tmp_path / "memo.m4a"
    memo.write_bytes(b"\x00\x00\x00\x18ftypM4A audio")
    sender = BridgeSender(start_bridge())
    contents = [
        {"type": "text", "text": "hi"},
        {"type": "markdown", "markdown": "**done**"},
        {"type": "file", "name": "chart.png", "mimeType": "image/png", "path": str(png)},
        {"type": "file", "name": "report.pdf", "mimeType": "application/pdf", "url": served_file},
        {"type": "voice", "name": "memo.m4a", "mimeType": "audio/mp4", "path": str(memo)},
        {"type": "contact", "name": "Ada Lovelace", "phones": ["+15550101"], "emails": []},
        {"type": "richlink", "url": "https://example.com/post"},
        {"type": "reply", "content": {"type": "text", "text": "in thread"}, "target": "m-1"},
        {"type": "reaction", "emoji": "❤️", "target": "m-1"},
        {"type": "reaction", "emoji": "fire", "target": "m-1"},  # a name in the SDK's Emoji
        {"type": "edit", "target": "sent-1", "text": "fixed"},
        {"type": "unsend", "target": "sent-1"},
    ]
    for n, content in enumerate(contents):
        receipt = sender.send(SPACE, content, key=f"m-1#{n}")
        assert receipt == {"mode": "bridge", "message_id": f"test-m-1#{n}"}
    records = {record["key"]: record for record in sent(sends)}
    assert [records[f"m-1#{n}"]["kind"] for n in range(len(contents))] == [
        c["type"] for c in contents
    ]
    files = {key: record["file"] for key, record in records.items() if "file" in record}
    assert files == {
        "m-1#2": {"size": len(PNG), "sha256": hashlib.sha256(PNG).hexdigest()},
        "m-1#3": {"size": 15, "sha256": hashlib.sha256(b"%PDF-1.7 report").hexdigest()},
        "m-1#4": {"size": 17, "sha256": hashlib.sha256(memo.read_bytes()).hexdigest()},
    }
    assert records["m-1#9"]["built"]["emoji"] == "🔥"
    assert records["m-1#8"]["built"]["target"]["id"] == "m-1"
    assert records["m-1#7"]["built"]["content"] == {"type": "text", "text": "in thread"}


@pytest.mark.parametrize(
    ("space", "content", "message"),
    [
        (
            WHATSAPP,
            {"type": "edit", "target": "x", "text": "y"},
            "WhatsApp Business does not support edit",
        ),
        (WHATSAPP, {"type": "unsend", "target": "x"}, "WhatsApp Business does not support unsend"),
        (
            Space(id="C1", platform="Slack"),
            {"type": "reply", "content": {"type": "contact", "name": "A"}, "target": "t"},
            "Slack does not support contact",
        ),
        (
            SPACE,
            {"type": "reaction", "emoji": "notAnEmojiName", "target": "m"},
            "unknown reaction name",
        ),
        (SPACE, {"type": "poll", "title": "?"}, 'unknown reply kind "poll"'),
    ],
)
def test_what_a_platform_cannot_do_is_refused_naming_both(
    start_bridge, sends: Path, space: Space, content: dict, message: str
) -> None:
    with pytest.raises(BridgeRefused, match=message):
        BridgeSender(start_bridge()).send(space, content, key="m-2#0")
    assert sent(sends) == []


def test_a_missing_file_is_the_sdks_error(start_bridge, tmp_path: Path) -> None:
    content = {
        "type": "file",
        "name": "gone.png",
        "mimeType": "image/png",
        "path": str(tmp_path / "gone.png"),
    }
    with pytest.raises(Exception, match="ENOENT"):
        BridgeSender(start_bridge()).send(SPACE, content, key="m-3#0")


def test_typing_is_stopped_when_the_app_goes_away(start_bridge, sends: Path) -> None:
    bridge = start_bridge()
    sender = BridgeSender(bridge)
    sender.typing(SPACE, True)
    sender.typing(SPACE, False)
    sender.typing(SPACE, True)  # ... and then the app dies without saying stop
    bridge.close()
    assert [r["typing"] for r in sent(sends) if "typing" in r] == [True, False, True, False]


def test_an_attachment_is_read_through_a_private_file(start_bridge, tmp_path: Path) -> None:
    fetched = tmp_path / "attachments"
    fetched.mkdir()
    (fetched / "ATT-1").write_bytes(PNG)
    incoming = tmp_path / "incoming"
    bridge = start_bridge(SPECTRUM_BRIDGE_TEST_ATTACHMENTS=str(fetched))
    sender = BridgeSender(bridge, incoming)
    assert sender.fetch(SPACE, "ATT-1", max_bytes=10_000) == PNG
    assert list(incoming.iterdir()) == []  # read, then removed
    assert incoming.stat().st_mode & 0o777 == 0o700
    with pytest.raises(BridgeRefused, match=f"attachment of {len(PNG)} bytes, over 100"):
        sender.fetch(SPACE, "ATT-1", max_bytes=100)
    with pytest.raises(BridgeRefused, match="WhatsApp Business does not support attachment"):
        sender.fetch(WHATSAPP, "ATT-1", max_bytes=10_000)
