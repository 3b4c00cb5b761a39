"""A stand-in for bridge/bridge.mjs that speaks the same line protocol.

What it does with a send depends on the text, so one test can mix behaviours:
  "fail"      answer ok: false
  "crash"     exit at once with code 3, answering nothing
  "hang"      stop answering anything, for good
  "slow:0.3"  answer after 0.3 s, while later requests are answered first
  "junk"      write a line that is not JSON before the answer
anything else is answered at once with {"message_id": "fake-<key>"}.
Environment: FAKE_BRIDGE_FATAL=why (refuse to start), FAKE_BRIDGE_SENDS=file
(append each key sent), FAKE_BRIDGE_START_DELAY=seconds.
"""

import json
import os
import sys
import threading
import time

lock = threading.Lock()
hung = False


def write(message: dict) -> None:
    with lock:
        if not hung:
            sys.stdout.write(json.dumps(message) + "\n")
            sys.stdout.flush()


def answer(request: dict, text: str) -> None:
    if text == "fail":
        return write({"id": request["id"], "ok": False, "error": "platform said no"})
    if sends := os.environ.get("FAKE_BRIDGE_SENDS"):
        with lock, open(sends, "a") as f:
            f.write(request.get("key", "") + "\n")
    write({"id": request["id"], "ok": True, "result": {"message_id": f"fake-{request.get('key')}"}})


def main() -> None:
    global hung
    time.sleep(float(os.environ.get("FAKE_BRIDGE_START_DELAY", 0)))
    if fatal := os.environ.get("FAKE_BRIDGE_FATAL"):
        write({"fatal": fatal})
        sys.exit(1)
    print("fake bridge: starting", file=sys.stderr, flush=True)
    write({"ready": True, "sdk": "fake", "providers": ["imessage"]})
    for line in sys.stdin:
        request = json.loads(line)
        text = request.get("content", {}).get("text", "")
        if text == "crash":
            os._exit(3)
        if text == "hang":
            with lock:
                hung = True
        elif text.startswith("slow:"):
            threading.Timer(float(text[5:]), answer, (request, text)).start()
        else:
            if text == "junk":
                write({"not": "an answer"})
                with lock:
                    sys.stdout.write("this is not json\n")
            answer(request, text)
    # End of input: exit at once, abandoning what is in flight, as bridge.mjs does.
    os._exit(0)


if __name__ == "__main__":
    main()
