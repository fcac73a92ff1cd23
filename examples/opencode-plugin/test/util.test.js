import assert from "node:assert/strict";
import { test } from "node:test";

import { boundArgs, excerpt, normalizeOptions, parseGrade, parseGradeArguments, toolSucceeded } from "../plugin/agent-tracker/util.js";

test("toolSucceeded: bash by exit code, other tools unless their metadata says error", () => {
  assert.equal(toolSucceeded("bash", { metadata: { output: "", exit: 0, truncated: false } }), true);
  assert.equal(toolSucceeded("bash", { metadata: { output: "", exit: 1, truncated: false } }), false);
  assert.equal(toolSucceeded("bash", { metadata: { output: "", exit: null } }), false, "killed or timed out");
  assert.equal(toolSucceeded("bash", { metadata: undefined }), false);
  assert.equal(toolSucceeded("read", { metadata: { truncated: false } }), true);
  assert.equal(toolSucceeded("edit", { metadata: { diagnostics: {}, diff: "" } }), true);
  assert.equal(toolSucceeded("mcp_tool", { metadata: { isError: true } }), false);
  assert.equal(toolSucceeded("custom", { metadata: { error: "boom" } }), false);
  assert.equal(toolSucceeded("custom", undefined), true);
});

test("grades: exactly -1, 1, 2, 5 or their names", () => {
  for (const [text, value] of [["-1", -1], ["1", 1], ["+1", 1], ["2", 2], ["5", 5], ["bad", -1], ["Neutral", 1], ["good", 2], ["excellence", 5]]) {
    assert.equal(parseGrade(text), value, String(text));
  }
  for (const text of ["0", "3", "4", "2.5", "", "great", "10"]) assert.equal(parseGrade(text), undefined, text);
  assert.deepEqual(parseGradeArguments(" 5  clean and tested "), { grade: 5, reason: "clean and tested" });
  assert.deepEqual(parseGradeArguments("-1"), { grade: -1 });
  assert.match(/** @type {any} */ (parseGradeArguments("")).error, /usage: \/grade <grade> \[reason\]/);
  assert.match(/** @type {any} */ (parseGradeArguments("7 x")).error, /invalid grade "7"/);
});

test("excerpts keep the head and the tail", () => {
  assert.equal(excerpt("short"), "short");
  assert.equal(excerpt(undefined), undefined);
  const text = "h".repeat(3000) + "m".repeat(5000) + "t".repeat(3000);
  const cut = /** @type {string} */ (excerpt(text));
  assert.ok(cut.startsWith("h".repeat(2048)) && cut.endsWith("t".repeat(2048)));
  assert.ok(cut.length < 4200);
  const args = { command: "x", content: "y".repeat(10000) };
  assert.notEqual(boundArgs(args), args);
  assert.equal(boundArgs({ command: "x" })?.command, "x");
});

test("options: opencode.json options, bridge config passthrough, env overrides", () => {
  const o = normalizeOptions({ databasePath: "/db", maxDatabaseSize: "64MiB", flushIntervalSeconds: 5, journalSyncMilliseconds: 20, scoring: { commitXp: 1 }, other: 1 }, {});
  assert.deepEqual(o.bridgeCommand, ["agent-tracker", "serve"]);
  assert.deepEqual(o.bridgeConfig, { databasePath: "/db", maxDatabaseSize: "64MiB", flushIntervalSeconds: 5, journalSyncMilliseconds: 20, scoring: { commitXp: 1 } });
  assert.equal(o.record, undefined);
  assert.deepEqual(normalizeOptions({ bridgeCommand: ["python", "-m", "bridge"] }, {}).bridgeCommand, ["python", "-m", "bridge"]);
  assert.deepEqual(normalizeOptions({ bridgeCommand: "uv run agent-tracker serve" }, {}).bridgeCommand, ["uv", "run", "agent-tracker", "serve"]);
  const env = { AGENT_TRACKER_BRIDGE_COMMAND: '["/opt/at", "serve"]', AGENT_TRACKER_PLUGIN_RECORD: "/tmp/rec.jsonl" };
  const e = normalizeOptions({ bridgeCommand: ["x"] }, env);
  assert.deepEqual(e.bridgeCommand, ["/opt/at", "serve"]);
  assert.equal(e.record, "/tmp/rec.jsonl");
  assert.equal(normalizeOptions({}, { AGENT_TRACKER_DISABLE: "1" }).enabled, false);
  assert.equal(normalizeOptions({ enabled: false }, {}).enabled, false);
});
