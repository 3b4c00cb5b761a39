// The playground page: conversations, a composer, and a panel of deliveries.
// The server (playground.py) builds, signs and sends each delivery; this page
// shows the messages, polls each accepted one's outcome and shows the bot's
// replies as they are recorded (reactions on the message they target).
"use strict";

const EMOJI = ["❤️", "👍", "😂"];
const COMPOSER_KINDS = ["text", "attachment", "voice", "contact", "richlink", "album", "unknown"];
const HINTS = {
  text: "Type a message", attachment: "Caption (optional)", voice: "(no text)",
  contact: "Contact's name", richlink: "https://example.com/post", album: "(no text)",
  unknown: "A note in a content type this code does not know",
};

const conversations = [
  { key: "ada", name: "Ada", chat: "direct", platform: "iMessage", sender: "+15550100", spaceId: "" },
  { key: "family", name: "Family", chat: "group", platform: "iMessage", sender: "+15550100",
    spaceId: "iMessage;+;chat493787071395575843" },
  { key: "bo", name: "Bo", chat: "direct", platform: "Telegram", sender: "7714122", spaceId: "" },
];
let current = conversations[0];
const messages = new Map(); // conversation key -> [message]
const byId = new Map(); // message id -> message, the user's and the bot's
let replyTo = null;
let deliveryCount = 0;

const $ = (id) => document.getElementById(id);

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key.startsWith("data-") || key.startsWith("aria-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
  return data;
}

// -- what a delivery's answer and a message's outcome mean ------------------

function answerLabel(response) {
  const { status, answer } = response;
  const said = (text, cls) => ({ text: `${status} ${text}`, cls });
  if (status === 202) return said("accepted", "ok");
  if (status === 200 && answer && answer.status === "duplicate") {
    return said("duplicate: not handled again", "dup");
  }
  if (status < 300) return said((answer && answer.status) || "ok", "dup");
  const reason = (answer && answer.error) || String(answer);
  if (status === 503 || status === 429 || status === 408) {
    return said(`${reason} (Spectrum would retry)`, "bad");
  }
  return said(`refused: ${reason}`, "bad");
}

function outcomeLabel(outcome) {
  if (!outcome) return "waiting for the bot…";
  const { state, attempts, error, replies } = outcome;
  if (state === "done") {
    const sent = replies.length === 1 ? "1 reply" : `${replies.length} replies`;
    return `handled: ${sent}`;
  }
  if (state === "failed") return `parked after ${attempts} attempt(s): ${error}`;
  if (state === "unknown") return "not in the inbox this playground reads: is the app using another one?";
  if (error) return `attempt ${attempts} failed: ${error}; retrying`;
  if (outcome.slow) return `still ${state}: is the app's worker running?`;
  return `${state}…`;
}

// -- messages --------------------------------------------------------------

function describeContent(body) {
  const content = JSON.parse(body).message.content;
  switch (content.type) {
    case "text": return content.text;
    case "attachment": return `📎 ${content.name} (${content.mimeType}, ${content.size} bytes)`;
    case "voice": return `🎤 ${content.name} (${content.duration} s)`;
    case "contact": return `👤 ${content.name.formatted} ${content.phones[0].value}`;
    case "richlink": return `🔗 ${content.url}`;
    case "reply": return content.content.text;
    case "group": return `🖼 album of ${content.items.length} photos`;
    default: return `❔ ${content.type}: ${JSON.stringify(content)}`;
  }
}

function addMessage(conversation, message) {
  message.reactions = message.reactions || [];
  if (!messages.has(conversation.key)) messages.set(conversation.key, []);
  messages.get(conversation.key).push(message);
  byId.set(message.id, message);
  if (!message.from) message.from = "user";
  if (!conversation.unread) conversation.unread = 0;
  if (conversation !== current) conversation.unread += 1;
}

function renderMessages() {
  $("chat-title").textContent = current.name;
  $("chat-meta").textContent = `${current.chat} · ${current.platform}`;
  const list = $("messages");
  list.replaceChildren(...(messages.get(current.key) || []).map(renderMessage));
  list.scrollTop = list.scrollHeight;
}

function renderMessage(message) {
  const mine = message.from === "user";
  const reactions = message.reactions.map((r) =>
    el("span", { class: `reaction from-${r.from}`, title: `${r.from === "bot" ? "the bot" : r.from} reacted` }, r.emoji));
  return el("li", { class: `bubble ${message.from}`, "data-message-id": message.id },
    current.chat === "group" && mine ? el("span", { class: "who" }, message.sender) : null,
    message.quote ? el("blockquote", {}, message.quote) : null,
    el("span", { class: "text" }, message.text),
    reactions.length ? el("span", { class: "reactions" }, reactions) : null,
    el("span", { class: `status ${message.statusClass || ""}` },
      [message.status, message.botStatus].filter(Boolean).join(" · ")),
    el("span", { class: "actions" },
      EMOJI.map((emoji) => el("button", { type: "button", "aria-label": `React ${emoji}`, onclick: () => react(message, emoji) }, emoji)),
      el("button", { type: "button", onclick: () => startReply(message) }, "Reply")));
}

function startReply(message) {
  replyTo = message;
  $("replying-to").textContent = message.text;
  $("replying").hidden = false;
  $("kind").value = "text";
  onKind();
  $("text").focus();
}

function stopReply() {
  replyTo = null;
  $("replying").hidden = true;
}

// -- sending ---------------------------------------------------------------

function form(extra) {
  return {
    chat: current.chat, platform: current.platform, space_id: current.spaceId,
    sender: $("sender").value.trim() || current.sender, signature: "good", ...extra,
  };
}

async function sendComposed(signature) {
  const kind = $("kind").value;
  const text = $("text").value;
  if ((kind === "text") && !text.trim()) return $("text").focus();
  const fields = { kind, text, signature };
  const file = $("file").files[0];
  if ((kind === "attachment" || kind === "voice") && file) {
    fields.file = { name: file.name, type: file.type, size: file.size };
  }
  if (replyTo && kind === "text") Object.assign(fields, { kind: "reply", target: replyTo.id });
  const conversation = current;
  const quote = replyTo && kind === "text" ? replyTo.text : null;
  const request = form(fields);
  const exchange = await deliver(request, signature === "bad" ? "badly signed" : "new message");
  if (!exchange) return;
  const message = { id: exchange.message_id, sender: request.sender, quote,
    text: describeContent(exchange.request.body) };
  addMessage(conversation, message);
  mark(message, exchange.response);
  $("text").value = "";
  $("file").value = "";
  stopReply();
  renderMessages();
  track(exchange);
}

async function react(target, emoji) {
  const fields = { kind: "reaction", emoji, target: target.id, text: target.text };
  const exchange = await deliver(form(fields), `reaction ${emoji}`);
  if (!exchange) return;
  if (exchange.response.status === 202) target.reactions.push({ emoji, from: form({}).sender });
  renderMessages();
  track(exchange);
}

async function redeliver(messageId, signature) {
  const label = signature === "bad" ? "redelivery, badly signed" : "redelivery";
  const exchange = await deliver({ message_id: messageId, signature }, label, "/api/redeliver");
  if (!exchange) return;
  const message = byId.get(messageId);
  if (message) mark(message, exchange.response, label);
  renderMessages();
  track(exchange);
}

async function deliver(body, label, path = "/api/deliver") {
  try {
    const exchange = await api(path, body);
    exchange.label = label;
    return exchange;
  } catch (error) {
    showError(`${label}: ${error.message}`);
    return null;
  }
}

function mark(message, response, prefix) {
  const { text, cls } = answerLabel(response);
  message.status = prefix ? `${prefix}: ${text}` : text;
  message.statusClass = cls;
}

function showError(text) {
  $("deliveries").prepend(el("li", { class: "delivery error", role: "alert" }, text));
}

// -- the panel and the bot's outcome ----------------------------------------

function track(exchange) {
  deliveryCount += 1;
  const entry = { n: deliveryCount, exchange, outcome: null, shown: new Set() };
  for (const older of document.querySelectorAll(".delivery details")) older.open = false;
  entry.node = el("details", { open: true });
  $("deliveries").prepend(el("li", { class: "delivery", "data-message-id": exchange.message_id }, entry.node));
  renderDelivery(entry);
  if (exchange.response.status === 202) poll(entry);
}

function renderDelivery(entry) {
  const { exchange, outcome } = entry;
  const { request, response } = exchange;
  const answer = answerLabel(response);
  const headers = Object.entries(request.headers).map(([k, v]) => `${k}: ${v}`).join("\n");
  let pretty = request.body;
  try { pretty = JSON.stringify(JSON.parse(request.body), null, 2); } catch (_) { /* as sent */ }
  const bytes = new TextEncoder().encode(request.body).length;
  let bot;
  if (response.status === 202) bot = el("pre", { class: "outcome" }, outcomeText(outcome));
  else if (response.status === 200) bot = el("p", {}, "Not handled again: the first delivery's outcome stands.");
  else bot = el("p", {}, "Not stored: the bot never sees it.");
  entry.node.replaceChildren(
    el("summary", {},
      el("b", {}, `#${entry.n} ${exchange.label}`), " ",
      el("code", {}, exchange.message_id), " ",
      el("span", { class: `answer ${answer.cls}` }, answer.text),
      el("button", { type: "button", onclick: () => redeliver(exchange.message_id, "good") }, "Redeliver"),
      el("button", { type: "button", onclick: () => redeliver(exchange.message_id, "bad") }, "Redeliver badly signed"),
      response.status === 202 ? el("span", { class: "state" }, outcomeLabel(outcome)) : null),
    el("div", { class: "columns" },
      el("div", {},
        el("h4", {}, "Request"),
        el("pre", {}, `POST ${request.url}\n${headers}\n\n${pretty}`),
        el("p", { class: "hint" }, `${bytes} bytes, sent compact as Spectrum does`)),
      el("div", {},
        el("h4", {}, "App's answer"),
        el("pre", { class: "answer-body" }, `${response.status} ${JSON.stringify(response.answer)}`),
        el("h4", {}, "Bot's outcome"),
        bot)));
}

function outcomeText(outcome) {
  const lines = [outcomeLabel(outcome)];
  if (outcome && outcome.state !== "unknown") {
    lines.push(`state: ${outcome.state}${outcome.state === "failed" ? " (parked)" : ""}, attempts: ${outcome.attempts}`);
    if (outcome.error) lines.push(`error: ${outcome.error}`);
    outcome.replies.forEach((reply, i) => {
      lines.push(`reply ${i}: ${JSON.stringify(reply.content)}`);
      lines.push(`  receipt: ${reply.receipt ? JSON.stringify(reply.receipt) : "not sent yet"}`);
    });
  }
  return lines.join("\n");
}

async function poll(entry) {
  const id = entry.exchange.message_id;
  const started = Date.now();
  let delay = 250;
  for (;;) {
    await sleep(delay);
    delay = Math.min(delay * 1.5, 2000);
    let outcome;
    try {
      outcome = await api(`/api/outcome/${encodeURIComponent(id)}`);
    } catch (error) {
      outcome = { state: "unavailable", attempts: 0, replies: [], error: error.message };
    }
    outcome.slow = Date.now() - started > 10000;
    entry.outcome = outcome;
    showReplies(entry);
    renderDelivery(entry);
    const message = byId.get(id);
    if (message && message.from === "user") {
      message.botStatus = outcomeLabel(outcome);
      renderMessages();
    }
    if (["done", "failed", "unknown"].includes(outcome.state)) return;
    if (Date.now() - started > 15 * 60 * 1000) return;
  }
}

function showReplies(entry) {
  const id = entry.exchange.message_id;
  const source = byId.get(id);
  const conversation = conversations.find((c) => (messages.get(c.key) || []).includes(source)) || current;
  entry.outcome.replies.forEach((reply, i) => {
    if (!reply.receipt || entry.shown.has(i)) return; // shown once the sender confirmed it
    entry.shown.add(i);
    const content = reply.content;
    const mode = reply.receipt.mode || "sent";
    if (content.type === "reaction" && byId.has(content.target)) {
      byId.get(content.target).reactions.push({ emoji: content.emoji, from: "bot" });
      return;
    }
    const text = content.type === "text" ? content.text
      : content.type === "reaction" ? `reacted ${content.emoji} to ${content.target}`
      : JSON.stringify(content);
    addMessage(conversation, { id: `${id}#${i}`, from: "bot", text, status: mode, statusClass: "ok" });
  });
}

// -- conversations -----------------------------------------------------------

function renderConversations() {
  $("conversations").replaceChildren(...conversations.map((c) =>
    el("li", {},
      el("button", {
        type: "button", class: c === current ? "current" : "", "aria-current": c === current ? "true" : "false",
        onclick: () => { current = c; c.unread = 0; $("sender").value = c.sender; stopReply(); render(); },
      },
      el("span", { class: "name" }, c.name),
      el("span", { class: "meta" }, `${c.chat} · ${c.platform}`),
      c.unread ? el("span", { class: "unread" }, String(c.unread)) : null))));
}

function render() {
  renderConversations();
  renderMessages();
}

function addConversation(event) {
  event.preventDefault();
  const data = new FormData(event.target);
  const chat = data.get("chat");
  const platform = data.get("platform");
  const sender = String(data.get("sender")).trim() || "+15550123";
  const spaceId = chat === "group" ? `${platform};+;chat${Math.floor(Math.random() * 1e15)}` : `any;-;${sender}`;
  current = { key: `c${Date.now()}`, name: String(data.get("name")), chat, platform, sender, spaceId };
  conversations.push(current);
  $("sender").value = sender;
  event.target.reset();
  render();
}

function onKind() {
  const kind = $("kind").value;
  $("file-field").hidden = !(kind === "attachment" || kind === "voice");
  $("text").placeholder = HINTS[kind];
}

async function start() {
  $("kind").replaceChildren(...COMPOSER_KINDS.map((k) => el("option", { value: k }, k)));
  $("kind").addEventListener("change", onKind);
  $("composer").addEventListener("submit", (event) => { event.preventDefault(); sendComposed("good"); });
  $("send-bad").addEventListener("click", () => sendComposed("bad"));
  $("cancel-reply").addEventListener("click", stopReply);
  $("new-conversation").addEventListener("submit", addConversation);
  $("sender").value = current.sender;
  onKind();
  render();
  try {
    const setup = await api("/api/setup");
    $("url").textContent = setup.url;
    const up = setup.health === "ok";
    $("health").textContent = up ? "app is up" : `app ${setup.health}: start it with make dev (or make run)`;
    $("health").className = `badge ${up ? "ok" : "bad"}`;
    for (const select of document.querySelectorAll("select.platforms")) {
      select.replaceChildren(...setup.platforms.map((p) => el("option", { value: p }, p)));
    }
  } catch (error) {
    $("health").textContent = `playground server: ${error.message}`;
    $("health").className = "badge bad";
  }
}

start();
