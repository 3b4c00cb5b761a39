"""Differential: the app never refuses a delivery the SDK's own schema accepts.

A 4xx is final for Spectrum, so refusing a correctly signed delivery loses that
message. The spec's reference deliveries and a few hundred seeded mutations of
them (fields dropped, nulled or retyped, unknown fields, unknown or empty content
types, other platforms, replies and album items mutated inside) go to the
spectrum-ts SDK's `slimEnvelopeSchema` (tests/sdk_schema.mjs, one Node process)
and, correctly signed, to the app. Each one the schema accepts must get a 2xx
and, for a `messages` event, reach the bot as its typed content or `Unknown`.
Deliveries the schema refuses may still be accepted where the bot can act on
them: they are counted (the summary line, and the test's properties), not failed.
The rule itself is in events.py's docstring.

When the pinned SDK version changes, this test is what shows whether the parser
must change too.
"""

from __future__ import annotations

import copy
import json
import random
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import MAX_BODY_BYTES, Post
from flask import Flask

from {{ cookiecutter.package_name }}.events import (
    Album,
    Attachment,
    Contact,
    Reaction,
    RichLink,
    Text,
    ThreadReply,
    Unknown,
    Voice,
    parse_event,
)
from {{ cookiecutter.package_name }}.runtime import runtime
from {{ cookiecutter.package_name }}.samples import delivery

NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(
    NODE is None, reason="node is not on PATH: install Node 22 to test the reply bridge"
)
HERE = Path(__file__).parent
VECTORS = json.loads((HERE / "vectors.json").read_text(encoding="utf-8"))
SEED, MUTANTS = 16, 400
TYPED = {
    "text": Text,
    "attachment": Attachment,
    "voice": Voice,
    "contact": Contact,
    "richlink": RichLink,
    "reaction": Reaction,
    "reply": ThreadReply,
    "group": Album,
}


# -- the deliveries ------------------------------------------------------------

TARGET = {
    "id": "spc-msg-00000000-0000-4000-8000-000000000001",
    "platform": "iMessage",
    "timestamp": "2026-05-14T19:06:32.000Z",
    "sender": {"id": "+15550100", "platform": "iMessage"},
    "contentPreview": "hey, what time is dinner?",
}
ITEM = {
    "id": "p:0/spc-msg-00000000-0000-4000-8000-000000000003",
    "direction": "inbound",
    "platform": "iMessage",
    "sender": {"id": "+15550100", "platform": "iMessage"},
    "timestamp": "2026-05-14T19:06:32.000Z",
    "content": {
        "type": "attachment",
        "id": "1A2B",
        "name": "IMG_4351.HEIC",
        "mimeType": "image/heic",
    },
}
# Spec §2.5-2.6: every content arm Spectrum documents or the SDK reads, and a future one.
CONTENTS = [
    {"type": "text", "text": "hey, what time is dinner?"},
    {
        "type": "attachment",
        "id": "1A2B",
        "name": "IMG_4127.HEIC",
        "mimeType": "image/heic",
        "size": 1365240,
    },
    {"type": "reaction", "emoji": "❤️", "target": TARGET},
    {
        "type": "group",
        "items": [ITEM, {**ITEM, "id": "p:1/spc-msg-00000000-0000-4000-8000-000000000003"}],
    },
    {
        "type": "contact",
        "name": {"formatted": "Ada Lovelace", "first": "Ada", "last": "Lovelace"},
        "phones": [{"value": "+15550101", "type": "mobile"}],
        "photo": {"mimeType": "image/jpeg"},
        "raw": "BEGIN:VCARD\nVERSION:3.0\nFN:Ada Lovelace\nEND:VCARD",
    },
    {"type": "richlink", "url": "https://example.com/post"},
    {"type": "reply", "content": {"type": "text", "text": "yes"}, "target": TARGET},
    {"type": "voice", "id": "V1", "mimeType": "audio/mp4", "duration": 3.5, "size": 4096},
    {"type": "read", "target": TARGET},
    {"type": "addMember", "members": ["+15550102"]},
    {"type": "removeMember", "members": ["+15550102"]},
    {"type": "leaveSpace"},
    {"type": "rename", "displayName": "Dinner club"},
    {"type": "avatar", "action": {"kind": "set", "mimeType": "image/png"}},
    {"type": "future-thing", "foo": "bar"},
]
LEGACY = {  # spec §2.6: what older deliveries and the SDK's minimum look like
    "event": "messages",
    "message": {
        "id": "m1",
        "space": {"id": "s1", "platform": "iMessage"},
        "content": {"type": "text", "text": "hi"},
    },
}


def shapes() -> list[dict[str, Any]]:
    found = [delivery(c, message_id=f"shape-{n}") for n, c in enumerate(CONTENTS)]
    found.append(delivery(CONTENTS[2], message_id="shape-group-chat", chat="group"))
    for platform, space in [("Telegram", "12345"), ("WhatsApp", "15550100"), ("slack", "C0123")]:
        found.append(delivery(CONTENTS[0], message_id=platform, platform=platform, space_id=space))
    return [*found, LEGACY]


PLATFORMS = ["Telegram", "WhatsApp", "slack", "terminal", "imessage", "", "Fax"]
CONTENT_TYPES = ["", " ", "TEXT", "Text", "text ", "future-thing", "edit", "read", "reply", "group"]
EVENTS = ["", "Messages", "reactions", "messages.v2", "typing"]
HALF_EMOJI = "\ud83d"  # a lone surrogate, as a JavaScript slice can leave (`contentPreview`)
ODD_STRINGS = ["", " ", "\u0000", HALF_EMOJI, "🙂" * 50, "x" * 10_000, "null", "0"]
OTHER_VALUES = [None, 0, -1, 1.5, 1e308, True, False, "", "x", [], [1, "a"], {}, {"k": "v"}]


def paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every place in a JSON tree that holds a value: (key, ...) tuples."""
    found = []
    if isinstance(node, dict):
        items = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return found
    for key, value in items:
        found.append((*prefix, key))
        found.extend(paths(value, (*prefix, key)))
    return found


def at(root: Any, path: tuple) -> Any:
    for key in path:
        root = root[key]
    return root


REQUIRED = [
    ("event",),
    ("message", "id"),
    ("message", "space", "id"),
    ("message", "content", "type"),
]
IMPORTANT = [
    *REQUIRED,
    ("message",),
    ("message", "space"),
    ("message", "content"),
    ("space",),
    ("space", "id"),
    ("message", "sender"),
    ("message", "sender", "id"),
    ("message", "platform"),
    ("message", "timestamp"),
    ("message", "direction"),
    ("message", "content", "content"),
    ("message", "content", "items"),
    ("message", "content", "target"),
]


def pick_path(rng: random.Random, payload: dict) -> tuple | None:
    every = paths(payload)
    important = [p for p in IMPORTANT if p in every]
    if important and rng.random() < 0.5:
        return rng.choice(important)
    return rng.choice(every) if every else None


def mutate(rng: random.Random, payload: dict) -> str:
    """Change `payload` in place in one random way; returns what was done."""
    message = payload.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    ops = ["required", "drop", "null", "retype", "string", "unknown", "type", "platform", "nest"]
    ops += ["deep", "event"]
    op = rng.choices(ops, weights=[3] + [1] * (len(ops) - 1))[0]
    if op == "required":  # the schema's own boundary: what it requires, barely there or not
        path = rng.choice([p for p in REQUIRED if p in paths(payload)] or [("event",)])
        parent = at(payload, path[:-1])
        value = rng.choice(["", " ", None, 0, [], {}, "drop"])
        if value == "drop":
            parent.pop(path[-1], None)
        else:
            parent[path[-1]] = value
        return f"required {path}={value!r}"
    if op == "type":
        where = [p for p in paths(payload) if p[-1] == "type" and isinstance(at(payload, p), str)]
        if where:
            path = rng.choice(where)
            at(payload, path[:-1])["type"] = rng.choice(CONTENT_TYPES)
            return f"type {path}"
    if op == "platform":
        where = [p for p in paths(payload) if p[-1] == "platform"]
        if where:
            path = rng.choice(where)
            at(payload, path[:-1])["platform"] = rng.choice(PLATFORMS)
            return f"platform {path}"
    if op == "nest" and isinstance(content, dict):
        if rng.random() < 0.5:
            message["content"] = {
                "type": "reply",
                "content": content,
                "target": copy.deepcopy(TARGET),
            }
        else:
            item = {**copy.deepcopy(ITEM), "content": content}
            message["content"] = {"type": "group", "items": [item, copy.deepcopy(ITEM)]}
        return "nest"
    if op == "deep" and isinstance(message, dict):
        inner: Any = content
        for _ in range(rng.choice([33, 60, 150])):  # events.py stops at 32
            if rng.random() < 0.7:
                inner = {"type": "reply", "content": inner}
            else:
                inner = {"type": "group", "items": [{"id": "p", "content": inner}]}
        message["content"] = inner
        return "deep"
    if op == "event":
        payload["event"] = rng.choice(EVENTS)
        return "event"
    path = pick_path(rng, payload)
    if path is None:
        return "nothing"
    parent, key = at(payload, path[:-1]), path[-1]
    if op == "drop":
        del parent[key]
    elif op == "null":
        parent[key] = None
    elif op == "retype":
        parent[key] = rng.choice([v for v in OTHER_VALUES if type(v) is not type(parent[key])])
    elif op == "string":
        # A message id that is not valid Unicode has a test of its own (below).
        odd = [o for o in ODD_STRINGS if path != ("message", "id") or o != HALF_EMOJI]
        parent[key] = rng.choice(odd)
    else:  # unknown: a field nobody knows yet, next to the chosen one
        target = parent[key] if isinstance(parent[key], dict) else parent
        if isinstance(target, dict):
            target[f"future_{rng.randrange(1000)}"] = rng.choice(OTHER_VALUES)
    return f"{op} {path}"


def encode_body(payload: dict) -> bytes:
    """As Spectrum's sender writes JSON: raw UTF-8, lone surrogates escaped (JSON.stringify)."""
    try:
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(payload, separators=(",", ":")).encode("ascii")


def deliveries() -> list[tuple[str, bytes]]:
    """(name, body): the reference deliveries as they are, then seeded mutations of them."""
    found = [(v["name"], v["body"].encode("utf-8")) for v in VECTORS]
    bases = [json.loads(v["body"]) for v in VECTORS if v["body"].startswith("{")]
    bases = [b for b in bases if isinstance(b.get("message"), dict)] + shapes()
    found += [(f"shape {n}", encode_body(s)) for n, s in enumerate(shapes())]
    rng = random.Random(SEED)
    for n in range(MUTANTS):
        payload = copy.deepcopy(rng.choice(bases))
        payload["message"]["id"] = f"mutant-{n}"  # one inbox row each, unless the id is mutated
        done = [mutate(rng, payload) for _ in range(rng.choice([1, 1, 2, 3]))]
        found.append((f"mutant {n}: {', '.join(done)}", encode_body(payload)))
    return found


def ask_schema(bridge_dir: Path, bodies: list[bytes]) -> tuple[str, list[dict]]:
    """The SDK's version, and its schema's verdict on each body (one Node process)."""
    lines = "".join(json.dumps(b.decode("utf-8", "replace")) + "\n" for b in bodies)
    done = subprocess.run(
        [NODE, str(HERE / "sdk_schema.mjs"), str(bridge_dir)],
        input=lines,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
    )
    assert done.returncode == 0, f"sdk_schema.mjs failed:\n{done.stderr[-3000:]}"
    header, *verdicts = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(verdicts) == len(bodies), done.stderr[-3000:]
    return header["sdk"], verdicts


# -- the test ------------------------------------------------------------------


def test_no_delivery_the_sdk_schema_accepts_is_refused(
    app: Flask, post: Post, bridge_dir: Path, record_property
) -> None:
    cases = deliveries()
    sdk, verdicts = ask_schema(bridge_dir, [body for _, body in cases])
    assert verdicts[[n for n, _ in cases].index("text-compact")]["ok"], "the harness is broken"
    current = runtime(app)
    figures: Counter[str] = Counter()
    lenient: Counter[str] = Counter()  # why the schema refused what the app accepted
    wrong = []
    for (name, body), verdict in zip(cases, verdicts, strict=True):
        response = post(body)
        answer = response.get_json(silent=True) or {}
        if answer.get("status") == "accepted":  # stored: the bot runs on it now
            current.bot_threads.process_one()
        accepted = 200 <= response.status_code < 300
        figures["schema"] += verdict["ok"]
        figures["app"] += accepted
        if accepted and not verdict["ok"]:
            figures["app only"] += 1
            lenient[verdict["error"].split(":")[0]] += 1
        problem = None
        if response.status_code >= 500:
            problem = f"crashed: {response.status_code}"
        elif len(body) > MAX_BODY_BYTES:  # over the size chosen for this project: 413 by design
            figures["over the size limit"] += 1
            problem = None if response.status_code == 413 else f"{response.status_code}, not 413"
        elif verdict["ok"] and not accepted:
            problem = f"refused {response.status_code} {answer.get('error')}"
        elif verdict["ok"]:
            problem = reaches_the_bot(app, body, answer)
        if problem:
            wrong.append(f"{name}: {problem} (schema: {verdict})\n  {body[:300]!r}")

    summary = (
        f"schema differential (@spectrum-ts/core {sdk}, seed {SEED}): "
        f"{len(cases)} deliveries, {figures['schema']} accepted by the schema, "
        f"{figures['app']} by the app, {figures['app only']} by the app only"
    )
    print(summary)
    record_property("schema_differential", summary)
    record_property("schema_refused_app_accepted", dict(lenient))
    assert not wrong, f"{len(wrong)} of {len(cases)} deliveries:\n" + "\n".join(wrong[:20])


def reaches_the_bot(app: Flask, body: bytes, answer: dict) -> str | None:
    """None if a schema-accepted delivery was stored and the bot ran on its typed content."""
    data = json.loads(body)
    if data["event"] != "messages":  # the SDK acknowledges other events and delivers nothing
        return None if answer.get("status") == "ignored" else f"answered {answer}"
    message = parse_event(data).message  # what the bot is given, from the stored text
    if message is None or message.id != data["message"]["id"]:
        return f"parsed as {message}"
    expected = TYPED.get(data["message"]["content"]["type"], Unknown)
    if type(message.content) is not expected or message.content.raw != data["message"]["content"]:
        return f"content parsed as {message.content!r}"
    if answer.get("status") == "duplicate":  # the same id came before: already stored
        return None if runtime(app).inbox.status(message.id) else f"answered {answer}"
    if answer.get("status") != "accepted":
        return f"answered {answer}"
    status = runtime(app).inbox.status(message.id)
    if status is None or status.state != "done":
        return f"the bot did not finish it: {status}"
    return None


def test_a_message_id_that_is_not_valid_unicode_is_stored(post: Post) -> None:
    """The schema accepts any JSON string as an id, "\\ud83d" (escaped) too."""
    payload = delivery({"type": "text", "text": "hi"}, message_id=f"spc-msg-{HALF_EMOJI}")
    assert post(encode_body(payload)).status_code == 202
