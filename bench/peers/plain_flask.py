"""The Spectrum webhook verifier a user would write by hand: verify, answer 200, store nothing.

Run by bench/peers.py as `gunicorn -w 2 plain_flask:app` in this folder, with
SPECTRUM_SIGNING_SECRET set.
"""

import hashlib
import hmac
import os
import time

from flask import Flask, request

SECRET = os.environ["SPECTRUM_SIGNING_SECRET"].encode()
TOLERANCE = 300

app = Flask(__name__)


@app.post("/spectrum-webhook")
def webhook():
    timestamp = request.headers.get("X-Spectrum-Timestamp", "")
    signature = request.headers.get("X-Spectrum-Signature", "").encode()
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 15):
        return {"error": "bad timestamp"}, 400
    if abs(int(time.time()) - int(timestamp)) > TOLERANCE:
        return {"error": "timestamp outside the tolerance"}, 401
    signed = b"v0:" + timestamp.encode() + b":" + request.get_data()
    expected = b"v0=" + hmac.new(SECRET, signed, hashlib.sha256).hexdigest().encode()
    if not hmac.compare_digest(expected, signature):
        return {"error": "bad signature"}, 401
    return {"status": "ok"}, 200


@app.get("/healthz")
def health():
    return {"status": "ok"}
