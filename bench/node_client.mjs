// The client side OpenCode's plugin really uses: vscode-jsonrpc over a child's stdio.
//
//   node bench/node_client.mjs --n 50000 --rtt 500 --init '{"config":{...}}' -- CMD ARGS...
//
// Spawns CMD, sends `initialize` (request) and `session.created`, then N `tool.executed`
// notifications without awaiting them (as the plugin does), then one `agent.status` request:
// the throughput is N / (time from the first notification to that response). Then RTT
// sequential `agent.status` requests give the round-trip p50/p99. Prints one JSON line.

import { spawn } from "node:child_process";
import { performance } from "node:perf_hooks";
import * as rpc from "vscode-jsonrpc/node";

function parseArgs(argv) {
  const options = { n: 50000, rtt: 500, init: "{}", agent: "build", session: "bench-node" };
  const split = argv.indexOf("--");
  const own = split >= 0 ? argv.slice(0, split) : argv;
  options.command = split >= 0 ? argv.slice(split + 1) : [];
  for (let i = 0; i < own.length; i += 2) {
    const name = own[i].replace(/^--/, "");
    const value = own[i + 1];
    options[name] = ["n", "rtt"].includes(name) ? Number(value) : value;
  }
  if (options.command.length === 0) throw new Error("give the server command after --");
  return options;
}

function percentile(sorted, pct) {
  const rank = Math.max(1, Math.min(sorted.length, Math.round((pct / 100) * sorted.length + 0.5)));
  return sorted[rank - 1];
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const [file, ...args] = options.command;
  const child = spawn(file, args, { stdio: ["pipe", "pipe", "inherit"] });
  const exited = new Promise((resolve) => child.on("exit", (code) => resolve(code)));
  const connection = rpc.createMessageConnection(
    new rpc.StreamMessageReader(child.stdout),
    new rpc.StreamMessageWriter(child.stdin),
  );
  let notificationsIn = 0;
  connection.onNotification(() => { notificationsIn += 1; });
  connection.listen();

  const spawned = performance.now();
  const init = JSON.parse(options.init);
  await connection.sendRequest("initialize", { clientInfo: { name: "bench-node", version: "0" }, ...init });
  const initialized = performance.now();
  connection.sendNotification("session.created", {
    sessionID: options.session, directory: init.project?.directory,
    agent: { id: options.agent, model: "claude-sonnet-4-5", provider: "anthropic" },
  });
  await connection.sendRequest("agent.status", { agentId: options.agent });

  const output = "x".repeat(160);
  const started = performance.now();
  for (let i = 0; i < options.n; i += 1) {
    // Not awaited, exactly like the plugin's hooks.
    void connection.sendNotification("tool.executed", {
      sessionID: options.session, callID: `call_${i}`, tool: "read", success: true,
      args: { filePath: `/bench/project/src/module_${i % 97}.py` }, output,
    });
  }
  await connection.sendRequest("agent.status", { agentId: options.agent });
  const streamed = performance.now();

  const samples = [];
  for (let i = 0; i < options.rtt; i += 1) {
    const t = performance.now();
    await connection.sendRequest("agent.status", { agentId: options.agent });
    samples.push(performance.now() - t);
  }
  samples.sort((a, b) => a - b);

  await connection.sendRequest("shutdown", {});
  await connection.sendNotification("exit", {});
  child.stdin.end();
  let timer;
  const code = await Promise.race([exited, new Promise((r) => { timer = setTimeout(() => r("timeout"), 30000); })]);
  clearTimeout(timer);
  if (code === "timeout") child.kill("SIGKILL");
  connection.dispose();

  const seconds = (streamed - started) / 1000;
  process.stdout.write(JSON.stringify({
    n: options.n,
    seconds,
    notificationsPerSecond: options.n / seconds,
    initializeMs: initialized - spawned,
    rttSamples: samples.length,
    rttP50Ms: samples.length ? percentile(samples, 50) : null,
    rttP99Ms: samples.length ? percentile(samples, 99) : null,
    exitCode: code,
    notificationsIn,
  }) + "\n");
}

main().catch((error) => {
  process.stderr.write(`node_client: ${error?.stack ?? error}\n`);
  process.exit(1);
});
