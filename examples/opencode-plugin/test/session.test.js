// A real OpenCode 1.18.33 session (recorded by tests/test_e2e_opencode.py through the plugin's
// recorder) replayed into the plugin, with the real bridge: the bridge must store what that
// session did (a commit, the agent's grade, a push, the user's /grade).

import assert from "node:assert/strict";
import { after, test } from "node:test";

import { SESSION_FIXTURE, cli, loadPlugin, loadRecording, replay, tempWorld, waitFor } from "./helpers.js";

/** @type {Array<() => void>} */
const cleanups = [];
after(() => cleanups.forEach((fn) => fn()));

test("a recorded real OpenCode session is tracked by the real bridge", async () => {
  const world = tempWorld("session");
  cleanups.push(world.cleanup);
  const records = loadRecording(SESSION_FIXTURE, world.project);
  const commitLine = records.find((r) => r.hook === "tool.execute.after" && /commit/.test(r.input.args.command));
  assert.ok(commitLine, "the fixture has the git commit");
  const commitHash = /\[\S+ ([0-9a-f]{7,40})\]/.exec(commitLine.output.output)?.[1];
  assert.ok(commitHash);
  const sessionID = commitLine.input.sessionID;

  const { hooks, tracker, logs, toasts } = await loadPlugin(world);
  await waitFor(() => tracker.bridge.ready, 20000, "the bridge");
  /** @type {Error[]} */
  const commandErrors = [];
  await replay(hooks, records, { onCommandError: (e) => commandErrors.push(e) });

  // /grade was handled by the plugin: the hook threw (so OpenCode does not prompt the model)
  assert.equal(commandErrors.length, 1);
  assert.match(commandErrors[0].message, /Grade 5 recorded for build's commit/);
  assert.ok(toasts.some((t) => t.variant === "success" && /Grade 5 recorded/.test(t.message)), JSON.stringify(toasts));

  const status = await tracker.bridge.request("agent.status", { agentId: "build" });
  assert.equal(status.agentId, "build");
  assert.equal(status.totalCommits, 1);
  assert.equal(status.totalPushes, 1);
  assert.ok(status.experiencePoints > 0);
  assert.equal(status.halted, false);
  assert.equal(status.pendingChanges, 0, "the push (and the session delete) flushed");

  const flushed = await tracker.bridge.dispose();
  assert.ok(flushed && Array.isArray(flushed.errors) && flushed.errors.length === 0, JSON.stringify(flushed));
  assert.equal(logs.filter((l) => l.level === "error").length, 0, JSON.stringify(logs));

  // the central database, read back through the CLI
  const sheet = cli(["status", "--json", "--database", world.database], world);
  const build = sheet.agents.find((/** @type {any} */ a) => a.agentId === "build");
  assert.ok(build, JSON.stringify(sheet));
  assert.equal(build.totalCommits, 1);
  assert.equal(build.totalPushes, 1);
  const { tables } = cli(["export", "--format", "json", "--database", world.database], world);
  const session = tables.sessions.find((/** @type {any} */ r) => r.sessionID === sessionID);
  assert.ok(session, "the session is exported");
  assert.equal(session.agentId, "build");
  assert.equal(session.model, "scripted");
  assert.ok(session.deletedAt, "session.deleted was sent");
  assert.deepEqual(tables.commits.map((/** @type {any} */ c) => c.hash), [commitHash]);
  assert.deepEqual(
    tables.grades.map((/** @type {any} */ g) => [g.grader, g.grade, g.commitHash]).sort(),
    [["agent", 2, commitHash], ["user", 5, commitHash]],
  );
});
