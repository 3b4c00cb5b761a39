// Asks the spectrum-ts SDK's own webhook schema about deliveries, for test_schema_differential.py.
//
//   node tests/sdk_schema.mjs <bridge dir>
//
// stdin: one JSON string per line, each a delivery body exactly as POSTed.
// stdout: first {"sdk": "<@spectrum-ts/core version>"}, then one line per body, in order:
// {"ok": true} or {"ok": false, "error": "<path>: <message>; ..."}.
//
// The body is read as the SDK's webhook receiver reads it (JSON.parse, then
// slimEnvelopeSchema.parse). The SDK is found from the bridge's package.json:
// ESM imports ignore NODE_PATH, so createRequire resolves (honouring each
// package's "exports" map) and a dynamic import() loads the file.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import readline from "node:readline";
import { pathToFileURL } from "node:url";

const bridgeDir = resolve(process.argv[2] ?? "bridge");
const fromBridge = createRequire(join(bridgeDir, "package.json"));
const fromSdk = createRequire(fromBridge.resolve("spectrum-ts")); // wherever npm put core
const webhookPath = fromSdk.resolve("@spectrum-ts/core/webhook");
const { slimEnvelopeSchema } = await import(pathToFileURL(webhookPath).href);
const core = JSON.parse(readFileSync(join(dirname(webhookPath), "..", "package.json"), "utf8"));

const say = (answer) => process.stdout.write(`${JSON.stringify(answer)}\n`);
const describe = (issues) =>
  issues.map((i) => `${i.path.length ? i.path.join(".") : "(root)"}: ${i.message}`).join("; ");

say({ sdk: core.version });
const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  let parsed;
  try {
    parsed = JSON.parse(JSON.parse(line));
  } catch (error) {
    say({ ok: false, error: `not JSON: ${error.message}` });
    continue;
  }
  const result = slimEnvelopeSchema.safeParse(parsed);
  say(result.success ? { ok: true } : { ok: false, error: describe(result.error.issues) });
}
