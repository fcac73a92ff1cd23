// What the plugin sends for OpenCode's real payloads (the recorded 1.18.33 session), checked
// message by message with the bridge connection replaced by a recorder. The tests with the
// real bridge are in bridge.test.js and session.test.js.

import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";

import { Tracker } from "../plugin/agent-tracker/tracker.js";
import { usageParams } from "../plugin/agent-tracker/util.js";
import { HISTORY_FIXTURE, SESSION_FIXTURE, bashCall, chatMessage, loadRecording, pluginInput, replay, sessionCreated, stubClient } from "./helpers.js";

const DIR = "/work/project";

/** @param {Record<string, unknown>} [options] */
function offlineTracker(options = {}) {
  const { client, logs, toasts } = stubClient();
  const tracker = new Tracker(pluginInput(DIR, client), { bridgeCommand: ["unused"], ...options }, { env: {} });
  /** @type {Array<[string, any]>} */
  const sent = [];
  tracker.bridge.notify = (method, params) => {
    sent.push([method, params]);
  };
  /** @type {Array<[string, any]>} */
  const requests = [];
  tracker.bridge.request = async (method, /** @type {any} */ params) => {
    requests.push([method, params]);
    if (method === "grade") return { agentId: "build", commitHash: "abc1234", grade: params.grade, communicationScore: 61 };
    if (method === "agent.status") return { agentId: "build", halted: false, skillPoints: 1 };
    return {};
  };
  Object.defineProperty(tracker.bridge, "ready", { get: () => true });
  /** @type {any} */
  const hooks = tracker.hooks();
  return { tracker, hooks, sent, requests, logs, toasts };
}

test("the recorded real session maps to the wire contract", async () => {
  const records = loadRecording(SESSION_FIXTURE, DIR);
  const { hooks, sent } = offlineTracker();
  /** @type {Error[]} */
  const errors = [];
  await replay(hooks, records, { onCommandError: (e) => errors.push(e) });
  const sessionID = records.find((r) => r.hook === "chat.message")?.input.sessionID;
  const methods = sent.map(([m]) => m);

  // session first, then the agent (once: session.updated/message.updated repeat it constantly)
  assert.deepEqual(sent[0], ["session.created", { sessionID, directory: DIR, title: sent[0][1].title }]);
  assert.deepEqual(sent[1], ["session.updated", { sessionID, agent: { id: "build", model: "scripted", provider: "scripted" } }]);
  assert.equal(sent.filter(([m, p]) => m === "session.updated" && p.agent).length, 1);
  // the placeholder title ("New session - <time>") is replaced by the real one, told once
  assert.match(sent[0][1].title, /^New session - /);
  assert.deepEqual(sent.filter(([m, p]) => m === "session.updated" && p.title), [
    ["session.updated", { sessionID, title: "Scripted session" }]]);

  const tools = sent.filter(([m]) => m === "tool.executed").map(([, p]) => p);
  assert.deepEqual(tools.map((t) => [t.tool, t.success]), [["bash", true], ["bash", true], ["bash", false]], "tracker_grade is not reported");
  assert.deepEqual(Object.keys(tools[0]).sort(), ["agentId", "args", "callID", "output", "sessionID", "success", "title", "tool"]);
  assert.equal(tools[0].agentId, "build");
  assert.match(tools[0].args.command, /git commit -m 'feat: add feature line'/);
  assert.match(tools[0].output, /^\[main [0-9a-f]{7}\] feat: add feature line/);
  assert.equal(tools[1].args.command, "git push origin main");
  assert.match(tools[1].output, /main -> main/);

  assert.ok(methods.includes("session.idle"));
  assert.equal(methods.at(-1), "session.deleted");
  assert.deepEqual(sent.at(-1), ["session.deleted", { sessionID }]);
  assert.equal(errors.length, 1, "/grade stops OpenCode");
  assert.ok(!methods.includes("command.executed"), "OpenCode publishes no command.executed for a stopped command");
});

test("usage.recorded: once per assistant message, when it completes, with the message's latest numbers", async () => {
  // the run that wrote tests/fixtures/opencode/opencode.db: a build session with a subagent, a plan session
  const records = loadRecording(HISTORY_FIXTURE, DIR);
  const { hooks, sent } = offlineTracker();
  await replay(hooks, records);
  const usage = sent.filter(([m]) => m === "usage.recorded").map(([, p]) => p);
  /** @type {Map<string, any>} */
  const latest = new Map();
  for (const r of records) {
    const info = r.hook === "event" && r.input.type === "message.updated" ? r.input.properties.info : undefined;
    if (info?.role === "assistant") latest.set(info.id, info);
  }
  assert.equal(latest.size, 10, "6 build messages, 2 of the subagent, 2 plan messages");
  assert.deepEqual(usage.map((p) => p.messageID).sort(), [...latest.keys()].sort(), "each message once");
  const completed = usage.map((p) => latest.get(p.messageID).time.completed);
  assert.deepEqual(completed, [...completed].sort((a, b) => a - b), "in the order the messages completed");
  const first = usage[0];
  const info = latest.get(first.messageID);
  assert.deepEqual(first, {
    sessionID: info.sessionID, messageID: info.id, cost: 0.00396,
    tokens: { input: 800, output: 80, reasoning: 20, cacheRead: 200, cacheWrite: 0 },
    agent: { id: "build", model: "scripted", provider: "scripted" },
    durationMs: info.time.completed - info.time.created,
  });
  /** @type {Map<string, any[]>} */
  const bySession = new Map();
  for (const p of usage) bySession.set(p.sessionID, [...(bySession.get(p.sessionID) ?? []), p]);
  const sums = [...bySession.values()].map((ps) => [ps[0].agent.id, ps.length, ps.reduce((sum, p) => sum + p.cost, 0)]);
  assert.deepEqual(sums, [["build", 6, 0.012764999999999999], ["general", 2, 0.002745], ["plan", 2, 0.004335]]);
  // every usage.recorded comes after the session is known to the bridge, and a repeat changes nothing
  for (const p of usage) {
    assert.ok(sent.findIndex(([m, q]) => m === "session.created" && q.sessionID === p.sessionID) < sent.findIndex(([, q]) => q === p));
  }
  const before = sent.length;
  await replay(hooks, records.filter((r) => r.hook === "event" && r.input.type === "message.updated"));
  assert.equal(sent.length, before, "the same numbers again: not sent again");
});

test("usageParams: nothing before completion, odd numbers count 0", () => {
  const base = { id: "m", sessionID: "s", role: "assistant", agent: "build", providerID: "p", modelID: "x", time: { created: 10 } };
  assert.equal(usageParams({ ...base, cost: 1, tokens: { input: 5 } }), undefined, "not completed yet");
  assert.equal(usageParams({ ...base, role: "user", time: { created: 1, completed: 2 } }), undefined);
  assert.deepEqual(usageParams({ ...base, time: { created: 10, completed: 25 }, cost: -1, tokens: { input: 2.7, output: "9", reasoning: -3, cache: { read: NaN, write: 4 } } }), {
    sessionID: "s", messageID: "m", cost: 0, tokens: { input: 2, output: 0, reasoning: 0, cacheRead: 0, cacheWrite: 4 },
    agent: { id: "build", model: "x", provider: "p" }, durationMs: 15,
  });
  assert.deepEqual(usageParams({ id: "m", sessionID: "s", role: "assistant", mode: "plan", time: { completed: 3 } }), {
    sessionID: "s", messageID: "m", cost: 0, tokens: { input: 0, output: 0, reasoning: 0, cacheRead: 0, cacheWrite: 0 }, agent: { id: "plan" },
  });
});

test("tool failures OpenCode reports only as error parts become tool.executed success:false", async () => {
  const { hooks, sent } = offlineTracker();
  await hooks.event({ event: sessionCreated("s1", DIR) });
  // recorded shape: a `read` of a missing file throws, so tool.execute.after never runs
  const part = {
    type: "tool", tool: "read", callID: "call_4_0", id: "prt", sessionID: "s1", messageID: "m",
    state: { status: "error", input: { filePath: "/work/project/nope.txt" }, error: "File not found: /work/project/nope.txt", time: { start: 1, end: 2 } },
  };
  await hooks.event({ event: { id: "e1", type: "message.part.updated", properties: { sessionID: "s1", part, time: 2 } } });
  await hooks.event({ event: { id: "e2", type: "message.part.updated", properties: { sessionID: "s1", part, time: 3 } } });
  const tools = sent.filter(([m]) => m === "tool.executed");
  assert.equal(tools.length, 1, "reported once");
  assert.deepEqual(tools[0][1], {
    sessionID: "s1", callID: "call_4_0", tool: "read", success: false,
    args: { filePath: "/work/project/nope.txt" }, output: "File not found: /work/project/nope.txt",
  });
  // completed parts are left to tool.execute.after; streaming text parts are ignored
  await hooks.event({ event: { id: "e3", type: "message.part.updated", properties: { part: { ...part, callID: "c9", state: { status: "completed" } } } } });
  await hooks.event({ event: { id: "e4", type: "message.part.updated", properties: { part: { type: "text", text: "x" } } } });
  assert.equal(sent.filter(([m]) => m === "tool.executed").length, 1);
});

test("calls blocked by the halt guard are not reported as tool failures", async () => {
  const { hooks, sent, tracker } = offlineTracker();
  await hooks.event({ event: sessionCreated("s1", DIR) });
  const [input, output] = chatMessage("s1");
  await hooks["chat.message"](input, output);
  tracker.onBridgeNotification("agent.state", { agentId: "build", halted: true, skillPoints: 0 });
  // before blocking, the guard asks the bridge once more: it still says halted
  tracker.bridge.request = async () => ({ agentId: "build", halted: true, skillPoints: 0 });
  await assert.rejects(hooks["tool.execute.before"]({ tool: "bash", sessionID: "s1", callID: "c1" }, { args: {} }), /halted \(skill points 0 ≤ 0\)/);
  await hooks.event({ event: { id: "e", type: "message.part.updated", properties: { part: {
    type: "tool", tool: "bash", callID: "c1", sessionID: "s1", state: { status: "error", input: {}, error: "blocked" } } } } });
  assert.equal(sent.filter(([m]) => m === "tool.executed").length, 0);
  tracker.onBridgeNotification("agent.state", { agentId: "build", halted: false, skillPoints: 1 });
  await hooks["tool.execute.before"]({ tool: "bash", sessionID: "s1", callID: "c2" }, { args: {} });
});

test("agent and model: from chat.message, message.updated and session.updated; sent only on change", async () => {
  const { hooks, sent, requests } = offlineTracker();
  // a session that existed before the plugin loaded: announced on first sight
  await hooks.event({ event: { id: "e", type: "message.updated", properties: { sessionID: "old", info: {
    id: "m1", sessionID: "old", role: "assistant", mode: "plan", agent: "plan", providerID: "anthropic", modelID: "claude", parentID: "m0",
    path: { cwd: DIR, root: DIR }, cost: 0, tokens: { input: 0, output: 0, reasoning: 0, cache: { read: 0, write: 0 } }, time: { created: 1 } } } } });
  assert.deepEqual(sent.slice(0, 2), [
    ["session.created", { sessionID: "old", directory: DIR }],
    ["session.updated", { sessionID: "old", agent: { id: "plan", model: "claude", provider: "anthropic" } }],
  ]);
  // same agent again: nothing sent
  await hooks["chat.message"]({ sessionID: "old", agent: "plan", model: { providerID: "anthropic", modelID: "claude" } }, { message: /** @type {any} */ ({}), parts: [] });
  assert.equal(sent.length, 2);
  // the user switches agent (1.18 session.updated carries agent and model {id, providerID})
  await hooks.event({ event: { id: "e", type: "session.updated", properties: { sessionID: "old", info: {
    id: "old", directory: DIR, title: "t", agent: "build", model: { id: "gpt", providerID: "openai", variant: "default" } } } } });
  assert.deepEqual(sent[2], ["session.updated", { sessionID: "old", agent: { id: "build", model: "gpt", provider: "openai" } }]);
  assert.deepEqual(sent[3], ["session.updated", { sessionID: "old", title: "t" }]);
  // the status of each newly seen agent is asked once, off the hot path
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(requests.filter(([m]) => m === "agent.status").map(([, p]) => p.agentId), ["plan", "build"]);
});

test("command.executed, session.idle, session.deleted and bounded outputs", async () => {
  const { hooks, sent } = offlineTracker({ excerptHalf: 100 });
  await hooks.event({ event: sessionCreated("s1", DIR) });
  await hooks.event({ event: { id: "e", type: "command.executed", properties: { name: "review", sessionID: "s1", arguments: "HEAD~1", messageID: "m" } } });
  assert.deepEqual(sent.at(-1), ["command.executed", { sessionID: "s1", command: "review", success: true, arguments: "HEAD~1" }]);
  const big = "A".repeat(150) + "B".repeat(1000) + "C".repeat(150);
  /** @type {any} */
  const call = bashCall("s1", "c1", "cat big", big, 0);
  call.input.args = { command: "cat big", content: "x".repeat(5000) };
  await hooks["tool.execute.after"](call.input, call.output);
  const params = sent.at(-1)?.[1];
  assert.ok(params.output.length < 400 && params.output.startsWith("A".repeat(100)) && params.output.endsWith("C".repeat(100)));
  assert.match(params.output, /1100 characters omitted/);
  assert.ok(params.args.content.length < 400, "long args are bounded too");
  assert.equal(call.input.args.content.length, 5000, "OpenCode's own args object is not modified");
  await hooks.event({ event: { id: "e", type: "session.idle", properties: { sessionID: "s1" } } });
  await hooks.event({ event: { id: "e", type: "session.deleted", properties: { sessionID: "s1", info: { id: "s1" } } } });
  assert.deepEqual(sent.slice(-2), [["session.idle", { sessionID: "s1" }], ["session.deleted", { sessionID: "s1" }]]);
});

test("recording: the raw hook inputs go to a JSON-lines file", async () => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "at-rec-")), "rec.jsonl");
  const { hooks, tracker } = offlineTracker({ record: file });
  await hooks.event({ event: sessionCreated("s1", DIR) });
  const call = bashCall("s1", "c1", "ls", "a\n", 0);
  await hooks["tool.execute.after"](call.input, call.output);
  await tracker.recorder?.close();
  const lines = fs.readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(lines.map((l) => l.hook), ["event", "tool.execute.after"]);
  assert.deepEqual(lines[1].input, call.input);
  assert.deepEqual(lines[1].output, call.output);
  fs.rmSync(path.dirname(file), { recursive: true, force: true });
});

test("hooks never throw on odd payloads (except the halt guard and /grade, on purpose)", async () => {
  const { hooks, logs } = offlineTracker();
  for (const event of [null, {}, { type: "session.created" }, { type: "session.created", properties: {} }, { type: "message.updated", properties: { info: null } },
    { type: "message.part.updated", properties: { part: { type: "tool", state: { status: "error" } } } }, { type: "unknown.event", properties: { x: 1 } }]) {
    await hooks.event({ event: /** @type {any} */ (event) });
  }
  await hooks["tool.execute.after"](/** @type {any} */ ({ tool: "bash", sessionID: "s", callID: "c" }), /** @type {any} */ (undefined));
  await hooks["chat.message"](/** @type {any} */ ({}), /** @type {any} */ ({}));
  assert.ok(logs.length <= 3);
});

test("a subagent's session seen first through another event is told again with its parentID", async () => {
  const { hooks, sent } = offlineTracker();
  const call = bashCall("ses_child", "c1", "ls", "", 0);
  await hooks["tool.execute.after"](call.input, call.output);
  /** @type {any} */
  const created = sessionCreated("ses_child", DIR);
  created.properties.info = { ...created.properties.info, parentID: "ses_root", title: "Look around (@general subagent)" };
  await hooks.event({ event: created });
  await hooks.event({ event: created }); // the same again: nothing new to say
  assert.deepEqual(sent.filter(([m]) => m === "session.created").map(([, p]) => p), [
    { sessionID: "ses_child", directory: DIR },
    { sessionID: "ses_child", directory: DIR, title: "Look around (@general subagent)", parentID: "ses_root" },
  ]);
});

test("the title OpenCode gives a session later (session.updated) replaces its placeholder, once", async () => {
  const { hooks, sent } = offlineTracker();
  await hooks.event({ event: { id: "e", type: "session.created", properties: { info: {
    id: "s9", directory: DIR, title: "New session - 2026-12-04T21:00:00.000Z" } } } });
  assert.deepEqual(sent.at(-1), ["session.created", { sessionID: "s9", directory: DIR, title: "New session - 2026-12-04T21:00:00.000Z" }]);
  const updated = { id: "e", type: "session.updated", properties: { info: { id: "s9", directory: DIR, title: "Fix the login redirect" } } };
  await hooks.event({ event: updated });
  assert.deepEqual(sent.at(-1), ["session.updated", { sessionID: "s9", title: "Fix the login redirect" }]);
  const count = sent.length;
  await hooks.event({ event: updated }); // the same title again: nothing sent
  assert.equal(sent.length, count);
});
