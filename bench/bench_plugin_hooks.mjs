// Hook overhead of the agent-tracker OpenCode plugin: the latency one `tool.execute.after`
// call adds to OpenCode's tool loop (target: p50 ≤ 50 µs), with the real bridge connected and
// consuming the notifications. p50/p99 time the awaited hook call; "amortized" is the wall time
// per call of the whole run, so it also counts the JSON encoding and pipe writes that
// vscode-jsonrpc does right after the hook has returned. Also measures `tool.execute.before` (the halt guard) and the
// `event` hook on OpenCode's most frequent event (message.part.updated while streaming).
//
// Usage: node bench/bench_plugin_hooks.mjs [--calls N] [--json] [--check]
//   --json   print only the JSON result;  --check   exit 1 when the target is missed.
// Needs the plugin's npm dependencies (cd examples/opencode-plugin && npm ci) and the bridge
// (the repo's .venv, or AGENT_TRACKER_TEST_PYTHON).

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "..");
const pluginDir = path.join(repo, "examples", "opencode-plugin", "plugin", "agent-tracker");
const { AgentTrackerPlugin } = await import(path.join(pluginDir, "index.js"));
const { trackers } = await import(path.join(pluginDir, "tracker.js"));

const args = process.argv.slice(2);
const jsonOnly = args.includes("--json");
const check = args.includes("--check");
const callsIndex = args.indexOf("--calls");
const CALLS = callsIndex >= 0 ? Number(args[callsIndex + 1]) : 20000;
const WARMUP = Math.min(5000, Math.floor(CALLS / 4));
const TARGET_P50_US = 50;

const venvPython = path.join(repo, ".venv", "bin", "python");
const python = process.env.AGENT_TRACKER_TEST_PYTHON ?? (fs.existsSync(venvPython) ? venvPython : "python3");
const home = fs.mkdtempSync(path.join(os.tmpdir(), "at-bench-"));
const project = path.join(home, "project");
fs.mkdirSync(project);

/** @param {string} text */
function say(text) {
  if (!jsonOnly) console.log(text);
}

const client = { app: { log: async () => ({}) }, tui: { showToast: async () => ({}) } };
/** @type {any} */
const hooks = await AgentTrackerPlugin(/** @type {any} */ ({
  client,
  project: { id: "bench", worktree: project, time: { created: 0 } },
  directory: project,
  worktree: project,
  serverUrl: new URL("http://127.0.0.1:4096"),
  $: undefined,
}), {
  bridgeCommand: [python, "-m", "bridge", "serve"],
  databasePath: ":memory:",
  bridgeEnv: { HOME: home, XDG_CONFIG_HOME: path.join(home, ".config"), PYTHONPATH: repo },
  toasts: false,
});
const tracker = trackers.get(hooks);
const deadline = Date.now() + 30000;
while (!tracker.bridge.ready) {
  if (Date.now() > deadline || tracker.bridge.state === "failed") {
    console.error(`the bridge did not start: ${tracker.bridge.reason}`);
    process.exit(2);
  }
  await new Promise((resolve) => setTimeout(resolve, 20));
}

const sessionID = "ses_bench";
await hooks.event({ event: { id: "e0", type: "session.created", properties: { sessionID, info: { id: sessionID, directory: project, title: "bench" } } } });
await hooks["chat.message"]({ sessionID }, { message: { agent: "build", model: { providerID: "p", modelID: "m" } }, parts: [] });

const commitOut = "[main 1a2b3c4] feat: add a feature\n 3 files changed, 42 insertions(+), 7 deletions(-)\n";
const bigOut = "line of build output that goes on for a while\n".repeat(400); // ~18 KB: excerpted

/**
 * @param {string} name
 * @param {(i: number) => Promise<unknown>} call
 */
async function measure(name, call) {
  for (let i = 0; i < WARMUP; i++) await call(i);
  const samples = new Float64Array(CALLS);
  const began = process.hrtime.bigint();
  for (let i = 0; i < CALLS; i++) {
    const start = process.hrtime.bigint();
    await call(i);
    samples[i] = Number(process.hrtime.bigint() - start) / 1000;
    // let the connection drain now and then, as OpenCode's event loop does between tool calls
    if (i % 256 === 255) await new Promise((resolve) => setImmediate(resolve));
  }
  await new Promise((resolve) => setImmediate(resolve));
  // wall time per call including the JSON encoding and pipe writes done after the hook returned
  const amortized = Number(process.hrtime.bigint() - began) / 1000 / CALLS;
  samples.sort();
  const at = (/** @type {number} */ q) => samples[Math.min(CALLS - 1, Math.floor(q * CALLS))];
  const mean = samples.reduce((a, b) => a + b, 0) / CALLS;
  const result = { hook: name, calls: CALLS, p50_us: round(at(0.5)), p90_us: round(at(0.9)), p99_us: round(at(0.99)), mean_us: round(mean), max_us: round(samples[CALLS - 1]), amortized_us: round(amortized) };
  say(`${name.padEnd(44)} p50 ${result.p50_us.toFixed(1).padStart(6)} µs   p99 ${result.p99_us.toFixed(1).padStart(7)} µs   mean ${result.mean_us.toFixed(1).padStart(6)} µs   amortized ${result.amortized_us.toFixed(1).padStart(6)} µs`);
  return result;
}

/** @param {number} x */
function round(x) {
  return Math.round(x * 10) / 10;
}

say(`agent-tracker plugin hook overhead (${CALLS} calls each, real bridge connected, Node ${process.version})`);
const results = [];
results.push(await measure("tool.execute.after (bash git commit)", (i) => hooks["tool.execute.after"](
  { tool: "bash", sessionID, callID: `c${i}`, args: { command: "git commit -m 'feat: add a feature'", description: "Commit" } },
  { title: "git commit -m 'feat: add a feature'", output: commitOut, metadata: { output: commitOut, exit: 0, truncated: false } },
)));
results.push(await measure("tool.execute.after (read, 18 KB output)", (i) => hooks["tool.execute.after"](
  { tool: "read", sessionID, callID: `r${i}`, args: { filePath: "/project/build.log" } },
  { title: "build.log", output: bigOut, metadata: { preview: "", truncated: false } },
)));
results.push(await measure("tool.execute.before (halt guard)", (i) => hooks["tool.execute.before"](
  { tool: "bash", sessionID, callID: `b${i}` }, { args: { command: "ls" } },
)));
const delta = { id: "evt", type: "message.part.updated", properties: { sessionID, part: { id: "prt", sessionID, messageID: "msg", type: "text", text: "streaming text" }, time: 1 } };
results.push(await measure("event (message.part.updated, streaming)", () => hooks.event({ event: delta })));

const flushed = await tracker.bridge.dispose(30000);
fs.rmSync(home, { recursive: true, force: true });

const main = results[0];
const holds = main.p50_us <= TARGET_P50_US;
const output = {
  benchmark: "plugin_hooks",
  target: { hook: "tool.execute.after", p50_us_max: TARGET_P50_US },
  holds,
  node: process.version,
  platform: `${process.platform}-${process.arch}`,
  cpus: os.cpus().length,
  results,
  bridgeFlush: flushed ?? null,
};
say(`target: tool.execute.after p50 ≤ ${TARGET_P50_US} µs → ${holds ? "HOLDS" : "MISSED"} (p50 ${main.p50_us} µs, p99 ${main.p99_us} µs)`);
console.log(JSON.stringify(output));
if (check && !holds) process.exit(1);
