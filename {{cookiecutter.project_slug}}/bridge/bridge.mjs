// The reply bridge: the Python app's only way to put a reply on the wire.
//
// Spectrum has no HTTP send API, so replies go through the spectrum-ts SDK. The
// Python app (bridge.py) starts this script once per worker process and keeps it
// running, because building the Spectrum app talks to the cloud.
//
// Protocol: one JSON object per line on stdin, one per line on stdout.
//   first line out:  {"ready": true, "sdk": "12.8.0", "providers": ["imessage"]}
//                    or {"fatal": "why"} and exit 1
//   requests:        {"id": 7, "op": "send", "key": "msg-1#0",
//                     "space": {"id": "...", "platform": "iMessage", "phone": "+1..."},
//                     "content": {"type": "text", "text": "hi"}}   (any kind: see build())
//                    {"id": 8, "op": "typing", "space": {...}, "on": true}
//                    {"id": 9, "op": "attachment", "space": {...}, "attachment": "<its id>",
//                     "max_bytes": 26214400, "dir": "<a private folder>"}
//                    {"id": 10, "op": "ping"}
//   answer:          {"id": 7, "ok": true, "result": {"message_id": "..."}}
//                    or {"id": 7, "ok": false, "error": "why", "retry": true|false,
//                        "permanent": true|false}
//                    (retry: the platform is throttling or down, not refusing the
//                    reply: the message waits without using up an attempt;
//                    permanent: the platform cannot do it at all: parked at once)
// stdout carries nothing else: every log line, the SDK's included, goes to stderr.
// On end of stdin or SIGTERM it exits at once (see shutdown below).
//
// Settings (environment): SPECTRUM_PROJECT_ID, SPECTRUM_PROJECT_SECRET,
// SPECTRUM_PROVIDERS (comma-separated, default "imessage"), SPECTRUM_CLOUD_URL,
// SPECTRUM_BRIDGE_JOURNAL_DIR (where sent replies are noted; see the journal below).

import { AsyncLocalStorage } from "node:async_hooks";
import { Console } from "node:console";
import { createHash, randomUUID } from "node:crypto";
import {
  appendFileSync,
  closeSync,
  fstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import readline from "node:readline";

// Before the SDK is loaded: its logger writes INFO lines to stdout otherwise.
globalThis.console = new Console({ stdout: process.stderr, stderr: process.stderr });
// The SDK does not throw for what a platform cannot do: it logs a warning and
// resolves undefined. Each send runs in its own `sending` context, so the warning
// it causes is caught here and turned into a refusal naming platform and feature.
const sending = new AsyncLocalStorage();
const warn = console.warn.bind(console);
console.warn = (...args) => {
  const attrs = args.find((arg) => arg && typeof arg === "object" && "spectrum.unsupported.kind" in arg);
  const store = sending.getStore();
  if (attrs && store) store.unsupported = args.find((arg) => typeof arg === "string" && arg.includes("not support"));
  warn(...args);
};

const sdk = await import("spectrum-ts");
const providers = await import("spectrum-ts/providers");
const { Spectrum } = sdk;

// Provider modules by the SDK's platform key (lowercase, "_" for spaces and "-").
const PROVIDERS = {
  imessage: providers.imessage,
  whatsapp_business: providers.whatsappBusiness,
  telegram: providers.telegram,
  slack: providers.slack,
};
const platformKey = (name) => String(name ?? "").trim().toLowerCase().replace(/[\s-]+/g, "_");

// Test mode, for the project's tests and benchmarks only: everything runs for real
// (the SDK's content builders included) except the final hand-over to the platform,
// which is appended to this file; attachments to fetch are read from the folder.
const TEST_SENDS = process.env.SPECTRUM_BRIDGE_TEST_SENDS;
const TEST_DELAY_MS = Number(process.env.SPECTRUM_BRIDGE_TEST_DELAY_MS ?? 0);
const TEST_ATTACHMENTS = process.env.SPECTRUM_BRIDGE_TEST_ATTACHMENTS;

const write = (answer) => process.stdout.write(`${JSON.stringify(answer)}\n`);

// A reply the platform cannot take at all: not sent, never retried.
class Refused extends Error {
  name = "Refused";
  permanent = true;
}
const describe = (error) =>
  [error?.name, error?.status, error?.message ?? String(error)].filter(Boolean).join(": ");

// Errors worth waiting out: the platform or the network, not the reply. HTTP
// statuses from the cloud, gRPC codes from the iMessage line, Node's socket errors.
const RETRY_STATUSES = new Set([408, 425, 429, 500, 502, 503, 504]);
const RETRY_GRPC_CODES = new Set([4, 8, 10, 14]); // DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, UNAVAILABLE
const RETRY_SOCKET_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "EAI_AGAIN"]);
function transient(error) {
  for (let e = error, depth = 0; e && depth < 5; e = e.cause, depth += 1) {
    if (RETRY_STATUSES.has(Number(e.status ?? e.statusCode))) return true;
    if (typeof e.code === "number" && RETRY_GRPC_CODES.has(e.code)) return true;
    if (typeof e.code === "string" && (RETRY_SOCKET_CODES.has(e.code) || e.code.startsWith("UND_ERR"))) {
      return true;
    }
  }
  return false;
}

const enabled = (process.env.SPECTRUM_PROVIDERS || "imessage").split(",").map(platformKey);
const unknown = enabled.filter((key) => !PROVIDERS[key]);
if (unknown.length) {
  write({ fatal: `unknown provider(s) in SPECTRUM_PROVIDERS: ${unknown.join(", ")}` });
  process.exit(1);
}

let app;
try {
  app = await Spectrum({ providers: enabled.map((key) => PROVIDERS[key].config()) });
} catch (error) {
  write({ fatal: describe(error) });
  process.exit(1);
}
if (TEST_SENDS) console.warn(`bridge: test mode, sends are appended to ${TEST_SENDS}`);
write({ ready: true, sdk: "12.8.0", providers: enabled });

// The SDK-version-specific part: a webhook's space as an SDK space handle.
// 12.8.0 builds it locally from the id; iMessage needs the line (`phone`) when a
// project has several.
const spaceOf = new Map(); // handle id -> the space it came from, to stop typing at exit
async function spaceHandle(space) {
  const key = platformKey(space?.platform);
  if (!enabled.includes(key)) {
    throw new Error(`no provider for platform ${JSON.stringify(space?.platform)}; add it to SPECTRUM_PROVIDERS`);
  }
  const params = key === "imessage" && space.phone ? { phone: space.phone } : undefined;
  const handle = await PROVIDERS[key](app).space.get(space.id, params);
  spaceOf.set(handle.id, space);
  return handle;
}

// What each platform can take, from spectrum-ts 12.8.0's providers (their send
// code; the project README has the same table). Anything else on a platform is
// refused before it is tried, naming both. Text, markdown (plain text where it has
// no formatting), files, voice notes, thread replies and reactions go everywhere.
const ONLY_ON = {
  contact: ["imessage", "telegram", "whatsapp_business"],
  richlink: ["imessage", "telegram", "whatsapp_business"],
  edit: ["imessage", "telegram"],
  unsend: ["imessage"],
  attachment: ["imessage"], // reading one that arrived: getAttachment
};
function supported(feature, platform) {
  const key = platformKey(platform);
  if (ONLY_ON[feature] && !ONLY_ON[feature].includes(key)) {
    throw new Refused(`${platform} does not support ${feature} (spectrum-ts 12.8.0)`);
  }
}

// Stand-ins for messages known by id only: reply, reaction, edit and unsend take
// a Message object, of which every provider reads only the id and content type.
const inbound = (id) => ({ id: String(id), content: { type: "text", text: "" }, direction: "inbound", isFromMe: false });
const outbound = (id) => ({ id: String(id), content: { type: "text", text: "" }, direction: "outbound", isFromMe: true });

function emoji(value) {
  if (!/^[A-Za-z][A-Za-z0-9]*$/.test(value)) return value; // an emoji already
  if (!Object.hasOwn(sdk.Emoji, value)) throw new Refused(`unknown reaction name ${JSON.stringify(value)}`);
  return sdk.Emoji[value];
}

// A stored reply (plain data from Python) as the SDK's content.
function build(content) {
  switch (content.type) {
    case "text":
      return sdk.text(content.text);
    case "markdown":
      return sdk.markdown(content.markdown);
    case "richlink":
      return sdk.richlink(content.url);
    case "file":
    case "voice": {
      const source = content.url ? new URL(content.url) : content.path;
      const options = { name: content.name, mimeType: content.mimeType };
      if (content.type === "file") return sdk.attachment(source, options);
      return sdk.voice(source, { ...options, duration: content.duration ?? undefined });
    }
    case "contact":
      return sdk.contact({
        name: { formatted: content.name },
        phones: (content.phones ?? []).map((value) => ({ value })),
        emails: (content.emails ?? []).map((value) => ({ value })),
      });
    case "reply":
      return sdk.reply(build(content.content), inbound(content.target));
    case "reaction":
      return sdk.reaction(emoji(content.emoji), inbound(content.target));
    case "edit":
      return sdk.edit(sdk.text(content.text), outbound(content.target));
    case "unsend":
      return sdk.unsend(outbound(content.target));
    default:
      throw new Refused(`unknown reply kind ${JSON.stringify(content.type)}`);
  }
}

function check(space, content) {
  supported(content.type, space?.platform);
  if (content.type === "reply") supported(content.content?.type, space?.platform);
}

async function deliver(handle, content, key) {
  const built = build(content);
  if (TEST_SENDS) return await record(handle, content, key, built);
  const store = {};
  const sent = await sending.run(store, () => handle.send(built));
  if (store.unsupported) throw new Refused(store.unsupported.replace(/; skipping\.$/, ""));
  return { message_id: sent?.id ?? null };
}

async function record(handle, content, key, built) {
  const made = await built.build(); // the SDK's own checks: a missing file, a bad MIME type ...
  if (TEST_DELAY_MS) await new Promise((resolve) => setTimeout(resolve, TEST_DELAY_MS));
  const entry = { key, kind: content.type, space: handle.id, content };
  if (made.type === "reaction" || made.type === "reply") entry.built = JSON.parse(JSON.stringify(made));
  if (typeof made.read === "function") {
    const bytes = await made.read();
    entry.file = { size: bytes.length, sha256: createHash("sha256").update(bytes).digest("hex") };
  }
  appendFileSync(TEST_SENDS, `${JSON.stringify(entry)}\n`);
  return { message_id: `test-${key}` };
}

// "typing...": started and stopped through the SDK, stopped on the way out (and
// after two minutes whatever happens), so it is never left on.
const typing = new Map(); // space id -> timer that stops it
async function setTyping({ space, on }) {
  const handle = await spaceHandle(space);
  clearTimeout(typing.get(handle.id));
  typing.delete(handle.id);
  if (on) typing.set(handle.id, setTimeout(() => setTyping({ space, on: false }).catch(() => {}), 120_000));
  if (TEST_SENDS) appendFileSync(TEST_SENDS, `${JSON.stringify({ typing: on, space: handle.id })}\n`);
  else if (on) await handle.startTyping();
  else await handle.stopTyping();
  return {};
}

// The bytes of an attachment the bot received, written to a private file in the
// folder Python chose (not sent down the pipe: it may be megabytes).
async function fetchAttachment({ space, attachment: id, max_bytes: maxBytes, dir }) {
  supported("attachment", space?.platform);
  let bytes;
  if (TEST_ATTACHMENTS) {
    bytes = readFileSync(`${TEST_ATTACHMENTS}/${encodeURIComponent(id)}`);
  } else {
    const found = await providers.imessage(app).getAttachment(id, space.phone ?? undefined);
    if (!found) throw new Refused(`attachment ${JSON.stringify(id)} not found`);
    if (found.size > maxBytes) throw new Refused(`attachment of ${found.size} bytes, over ${maxBytes}`);
    bytes = await found.read();
  }
  if (bytes.length > maxBytes) throw new Refused(`attachment of ${bytes.length} bytes, over ${maxBytes}`);
  const path = `${dir}/${randomUUID()}`;
  writeFileSync(path, bytes, { mode: 0o600 });
  return { path, size: bytes.length };
}

// The journal of sent replies, shared by every bridge on this machine: one file a
// day in SPECTRUM_BRIDGE_JOURNAL_DIR. A send is noted the moment the SDK confirms
// it, before the answer goes back to Python, and a bridge asked for a key that any
// bridge here has noted returns that result instead of sending again. It closes
// the gap when a worker dies between the two: Python records the receipt only
// milliseconds later, but a SIGKILL in those milliseconds would otherwise mean a
// second copy when another worker retries the message.
const JOURNAL_DIR = process.env.SPECTRUM_BRIDGE_JOURNAL_DIR;
const DAY_MS = 24 * 3600 * 1000;
const noted = new Map(); // key -> result, from this machine's journal
const readUpTo = new Map(); // journal file -> bytes already read
const NOTED_KEPT = 100_000;

const journalFile = (time) =>
  `${JOURNAL_DIR}/sent-replies-${new Date(time).toISOString().slice(0, 10)}.jsonl`;

function readJournal() {
  // Retries come within minutes: yesterday's file and today's are enough.
  for (const file of [journalFile(Date.now() - DAY_MS), journalFile(Date.now())]) {
    let fd;
    try {
      fd = openSync(file, "r");
    } catch {
      continue; // not written yet
    }
    try {
      const from = readUpTo.get(file) ?? 0;
      const size = fstatSync(fd).size;
      if (size <= from) continue;
      const bytes = Buffer.alloc(size - from);
      readSync(fd, bytes, 0, bytes.length, from);
      const complete = bytes.subarray(0, bytes.lastIndexOf(10) + 1); // whole lines only
      for (const line of complete.toString("utf8").split("\n")) {
        let entry;
        try {
          entry = JSON.parse(line);
        } catch {
          continue; // a line damaged by a crash: nothing to go by
        }
        noted.set(entry.key, entry.result);
        if (noted.size > NOTED_KEPT) noted.delete(noted.keys().next().value);
      }
      readUpTo.set(file, from + complete.length);
    } finally {
      closeSync(fd);
    }
  }
}

function noteSent(key, result) {
  // Readable by this user only: it names the conversations replied to.
  appendFileSync(journalFile(Date.now()), `${JSON.stringify({ key, result })}\n`, { mode: 0o600 });
}

if (JOURNAL_DIR) {
  mkdirSync(JOURNAL_DIR, { recursive: true, mode: 0o700 });
  for (const name of readdirSync(JOURNAL_DIR)) {
    const day = /^sent-replies-(\d{4}-\d{2}-\d{2})\.jsonl$/.exec(name)?.[1];
    if (day && Date.now() - Date.parse(day) > 3 * DAY_MS) unlinkSync(`${JOURNAL_DIR}/${name}`);
  }
}

// Idempotency: a request repeated with the same key (Python timed out and tried
// again) joins the send in flight or gets the earlier result; with the journal, a
// key any bridge on this machine has sent is not sent again either.
const inflight = new Map();
const finished = new Map();
const FINISHED_KEPT = 10_000;

function send({ key, space, content }) {
  if (finished.has(key)) return Promise.resolve(finished.get(key));
  if (inflight.has(key)) return inflight.get(key);
  if (key && JOURNAL_DIR) {
    readJournal();
    if (noted.has(key)) return Promise.resolve(noted.get(key));
  }
  const promise = (async () => {
    check(space, content ?? {}); // refused before anything else is tried
    const result = await deliver(await spaceHandle(space), content ?? {}, key);
    if (key && JOURNAL_DIR) noteSent(key, result);
    return result;
  })();
  if (key) {
    inflight.set(key, promise);
    promise
      .then((result) => {
        finished.set(key, result);
        if (finished.size > FINISHED_KEPT) finished.delete(finished.keys().next().value);
      })
      .catch(() => {})
      .finally(() => inflight.delete(key));
  }
  return promise;
}

const OPS = { send, typing: setTyping, attachment: fetchAttachment, ping: async () => ({ pong: true }) };

const running = new Set();
async function handle(line) {
  let request;
  try {
    request = JSON.parse(line);
  } catch {
    request = undefined;
  }
  if (typeof request !== "object" || request === null || Array.isArray(request)) {
    console.error(`bridge: ignoring a line that is not a request: ${line.slice(0, 200)}`);
    return;
  }
  const { id, op } = request;
  try {
    if (!Object.hasOwn(OPS, op)) throw new Error(`unknown op ${JSON.stringify(op)}`);
    write({ id, ok: true, result: await OPS[op](request) });
  } catch (error) {
    console.error(`bridge: ${op} failed space_id=${JSON.stringify(request.space?.id)}: ${describe(error)}`);
    const permanent = error instanceof Refused;
    write({ id, ok: false, error: describe(error), retry: !permanent && transient(error), permanent });
  }
}

const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
lines.on("line", (line) => {
  if (!line.trim()) return;
  const task = handle(line).finally(() => running.delete(task));
  running.add(task);
});

// End of input means the app is done with us, or died (a SIGKILLed worker's pipe
// closes too). Either way nobody will read an answer, so sends still in flight are
// abandoned rather than finished: their messages go back to the inbox unconfirmed,
// and finishing them here would only make a second copy more likely.
let stopping = false;
async function shutdown() {
  if (stopping) return;
  stopping = true;
  lines.close();
  if (running.size) console.error(`bridge: stopping with ${running.size} request(s) unanswered`);
  // Nobody is left to say stop: "typing..." must not stay on after the app has gone.
  await Promise.race([
    Promise.allSettled([...typing.keys()].map((id) => setTyping({ space: spaceOf.get(id), on: false }))),
    new Promise((resolve) => setTimeout(resolve, 1000)),
  ]);
  const stopped = app.stop?.().catch((error) => console.error(`bridge: stop failed: ${describe(error)}`));
  await Promise.race([stopped, new Promise((resolve) => setTimeout(resolve, 2000))]);
  process.exit(0);
}
lines.on("close", shutdown);
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
