// The plugin against the real bridge: git commit/push through the bash tool, the halt guard,
// /grade, options passed through, and what happens when the bridge is missing or crashes.

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { after, describe, test } from "node:test";

import { bashCall, chatMessage, cli, cliText, loadPlugin, sessionCreated, tempWorld, waitFor } from "./helpers.js";

/** @type {Array<() => void>} */
const cleanups = [];
after(() => cleanups.forEach((fn) => fn()));

/** @param {string} name */
function world(name) {
  const w = tempWorld(name);
  cleanups.push(w.cleanup);
  return w;
}

const COMMIT = "echo x >> a.txt && git add a.txt && git commit -m 'feat: x'";
const COMMIT_OUT = "[main 1a2b3c4] feat: x\n 1 file changed, 1 insertion(+)\n";
const PUSH_OUT = "To /tmp/remote.git\n   0f0f0f0..1a2b3c4  main -> main\n";

/**
 * Opens a session for agent "build" the way OpenCode does (event, then chat.message).
 * @param {any} hooks
 * @param {string} sessionID
 * @param {string} directory
 */
async function openSession(hooks, sessionID, directory) {
  await hooks.event({ event: sessionCreated(sessionID, directory) });
  const [input, output] = chatMessage(sessionID);
  await hooks["chat.message"](input, output);
}

describe("with the real bridge", () => {
  test("git commit and git push through the bash tool: a commit, a push, and a flush", async () => {
    const w = world("git");
    const { hooks, tracker } = await loadPlugin(w);
    await waitFor(() => tracker.bridge.ready, 20000, "the bridge");
    await openSession(hooks, "ses_git", w.project);

    const commit = bashCall("ses_git", "call_1", COMMIT, COMMIT_OUT, 0);
    await hooks["tool.execute.before"]({ tool: "bash", sessionID: "ses_git", callID: "call_1" }, { args: commit.input.args });
    await hooks["tool.execute.after"](commit.input, commit.output);
    let status = await tracker.bridge.request("agent.status", { sessionID: "ses_git" });
    assert.equal(status.agentId, "build");
    assert.equal(status.totalCommits, 1);
    assert.ok(status.pendingChanges > 0, "not flushed before the push");

    const push = bashCall("ses_git", "call_2", "git push origin main", PUSH_OUT, 0);
    await hooks["tool.execute.after"](push.input, push.output);
    status = await tracker.bridge.request("agent.status", { agentId: "build" });
    assert.equal(status.totalPushes, 1);
    assert.equal(status.pendingChanges, 0, "the push flushed");

    // a failed commit (exit 1) is not a commit
    const failed = bashCall("ses_git", "call_3", "git commit -m nothing", "nothing to commit, working tree clean\n", 1);
    await hooks["tool.execute.after"](failed.input, failed.output);
    status = await tracker.bridge.request("agent.status", { agentId: "build" });
    assert.equal(status.totalCommits, 1);
    await tracker.bridge.dispose();
  });

  test("a halted agent's tools are blocked from state the bridge pushed, even when the bridge cannot answer", async () => {
    const w = world("halt");
    const { hooks, tracker, toasts } = await loadPlugin(w);
    await waitFor(() => tracker.bridge.ready, 20000, "the bridge");
    await openSession(hooks, "ses_halt", w.project);
    await waitFor(() => tracker.agents.has("build"), 5000, "the agent's status");
    await hooks["tool.execute.before"]({ tool: "bash", sessionID: "ses_halt", callID: "c0" }, { args: { command: "ls" } });

    // SP 1 → 0: the bridge pushes agent.state {halted: true}
    await tracker.bridge.request("bug.reported", { agentId: "build", description: "broke the build" });
    await waitFor(() => tracker.agents.get("build")?.halted === true, 5000, "agent.state halted");

    // the guard asks the bridge again only for an agent it knows is halted, and blocks on what it
    // knows when the bridge cannot answer
    const request = tracker.bridge.request;
    tracker.bridge.request = () => Promise.reject(new Error("the bridge is gone"));
    await assert.rejects(
      hooks["tool.execute.before"]({ tool: "bash", sessionID: "ses_halt", callID: "c1" }, { args: { command: "ls" } }),
      /agent "build" is halted .*"bash" tool is blocked/s,
    );
    await assert.rejects(hooks["tool.execute.before"]({ tool: "edit", sessionID: "ses_halt", callID: "c2" }, { args: {} }), /halted/);
    // reading its own sheet stays allowed
    await hooks["tool.execute.before"]({ tool: "tracker_status", sessionID: "ses_halt", callID: "c3" }, { args: {} });
    tracker.bridge.request = request;
    // a blocked call shows up as a tool part with state "error": not reported as a tool failure
    await hooks.event({ event: { id: "e", type: "message.part.updated", properties: { part: {
      id: "prt", sessionID: "ses_halt", messageID: "m", type: "tool", callID: "c1", tool: "bash",
      state: { status: "error", input: { command: "ls" }, error: "agent-tracker: halted", time: { start: 1, end: 2 } } } } } });
    assert.ok(toasts.some((t) => /halted/i.test(t.message)), "the bridge's toast reached the TUI");

    await tracker.bridge.request("agent.reinstate", { agentId: "build", reason: "test" });
    await waitFor(() => tracker.agents.get("build")?.halted === false, 5000, "agent.state reinstated");
    await hooks["tool.execute.before"]({ tool: "bash", sessionID: "ses_halt", callID: "c4" }, { args: { command: "ls" } });
    await tracker.bridge.dispose();
  });

  test("/grade grades the last commit without the model, and rejects invalid grades", async () => {
    const w = world("grade");
    const { hooks, tracker, toasts } = await loadPlugin(w);
    await waitFor(() => tracker.bridge.ready, 20000, "the bridge");

    // the config hook declares the command (OpenCode refuses unknown commands)
    /** @type {any} */
    const config = { command: {} };
    await hooks.config(config);
    assert.ok(config.command.grade?.template, "grade command declared");
    assert.match(config.command.grade.description, /agent-tracker/);
    assert.ok(config.command.bug?.template && config.command.retro?.template, "bug and retro commands declared");
    /** @type {any} */
    const userConfig = { command: { grade: { template: "mine" } } };
    await hooks.config(userConfig);
    assert.equal(userConfig.command.grade.template, "mine", "a user's own grade command is kept");
    // ... and stays theirs: the plugin lets OpenCode run it
    await hooks["command.execute.before"]({ command: "grade", sessionID: "ses_grade", arguments: "5" }, { parts: [] });
    await hooks.config({ command: {} });

    await openSession(hooks, "ses_grade", w.project);
    const parts = [{ type: "text", text: "The user graded your last commit: 5 great" }];
    // no commit yet: the bridge says so, nothing crashes
    await assert.rejects(
      hooks["command.execute.before"]({ command: "grade", sessionID: "ses_grade", arguments: "5 great" }, { parts }),
      /\/grade failed: .*commit/i,
    );
    const commit = bashCall("ses_grade", "call_1", COMMIT, COMMIT_OUT, 0);
    await hooks["tool.execute.after"](commit.input, commit.output);

    await assert.rejects(
      hooks["command.execute.before"]({ command: "grade", sessionID: "ses_grade", arguments: "3 meh" }, { parts }),
      /invalid grade "3": use -1 \(bad\), 1 \(neutral\), 2 \(good\) or 5 \(excellence\)/,
    );
    assert.ok(toasts.some((t) => t.variant === "error" && /invalid grade/.test(t.message)));

    const before = await tracker.bridge.request("agent.status", { agentId: "build" });
    await assert.rejects(
      hooks["command.execute.before"]({ command: "grade", sessionID: "ses_grade", arguments: "excellence  really clean" }, { parts }),
      /Grade 5 recorded for build's commit 1a2b3c4.*the model is not called/,
    );
    const afterGrade = await tracker.bridge.request("agent.status", { agentId: "build" });
    assert.equal(afterGrade.communicationScore, before.communicationScore + 5);
    assert.ok(toasts.some((t) => t.variant === "success" && /Grade 5 recorded/.test(t.message)));

    // other commands pass through untouched
    await hooks["command.execute.before"]({ command: "review", sessionID: "ses_grade", arguments: "" }, { parts: [] });

    // the agent's own grade through its tool
    const ctx = { sessionID: "ses_grade", messageID: "m", agent: "build", directory: w.project, worktree: w.project,
      abort: new AbortController().signal, metadata() {}, ask: async () => {} };
    const text = await hooks.tool.tracker_grade.execute({ grade: 2, reason: "fine" }, ctx);
    assert.match(text, /Recorded your grade 2 for commit 1a2b3c4/);
    assert.match(await hooks.tool.tracker_grade.execute({ grade: 4, reason: "x" }, ctx), /Invalid grade 4/);
    assert.match(await hooks.tool.tracker_status.execute({}, ctx), /Agent: build[\s\S]*Commits: 1/);
    assert.equal(typeof (await hooks.tool.tracker_report.execute({}, ctx)), "string");
    await tracker.bridge.dispose();
  });

  test("/bug halts the agent; its next call is blocked saying why; a CLI reinstatement lets the next one run", async () => {
    const w = world("bug");
    const { hooks, tracker, toasts } = await loadPlugin(w);
    await waitFor(() => tracker.bridge.ready, 20000, "the bridge");
    /** @type {any} */
    const config = { command: {} };
    await hooks.config(config);
    await openSession(hooks, "ses_bug", w.project);
    await waitFor(() => tracker.agents.has("build"), 5000, "the agent's status");
    const commit = bashCall("ses_bug", "call_1", COMMIT, COMMIT_OUT, 0);
    await hooks["tool.execute.after"](commit.input, commit.output);

    // one toast asks for a grade of the new commit, once
    await waitFor(() => toasts.some((t) => /Commit 1a2b3c4 by build \("feat: x"\): grade it with \/grade 5\|2\|1\|-1/.test(t.message)),
      5000, "the grade prompt");
    tracker.onBridgeNotification("commit.recorded", { commitHash: "1a2b3c4", agentId: "build" });
    assert.equal(toasts.filter((t) => /grade it with/.test(t.message)).length, 1, "asked once per commit");

    await assert.rejects(
      hooks["command.execute.before"]({ command: "bug", sessionID: "ses_bug", arguments: "the checkout total is wrong" }, { parts: [] }),
      /Bug recorded for build: skill points 0; it is halted: its tools are blocked until `agent-tracker reinstate build`.*the model is not called/,
    );
    assert.ok(toasts.some((t) => t.variant === "error" && /Bug recorded for build/.test(t.message)));
    let status = await tracker.bridge.request("agent.status", { agentId: "build" });
    assert.equal(status.skillPoints, 0);
    assert.equal(status.totalBugs, 1);

    // the next tool call is blocked with the reason, and the agent may still look back on its work
    await assert.rejects(
      hooks["tool.execute.before"]({ tool: "bash", sessionID: "ses_bug", callID: "c2" }, { args: { command: "ls" } }),
      /agent "build" is halted \(skill points 0 after 1 bug; the latest: a bug was reported: the checkout total is wrong\), so the "bash" tool is blocked.*agent-tracker reinstate build/s,
    );
    const ctx = { sessionID: "ses_bug", messageID: "m", agent: "build", directory: w.project, worktree: w.project,
      abort: new AbortController().signal, metadata() {}, ask: async () => {} };
    await hooks["tool.execute.before"]({ tool: "tracker_retro", sessionID: "ses_bug", callID: "c3" }, { args: {} });
    assert.match(await hooks.tool.tracker_retro.execute({ summary: "I committed before running the tests",
      toImprove: ["run the tests first", ""], lessons: "not a list" }, ctx), /Recorded your retrospective for commit 1a2b3c4/);
    assert.match(await hooks.tool.tracker_retro.execute({}, ctx), /Give a summary/);
    assert.match(await hooks.tool.tracker_status.execute({}, ctx), /HALTED[\s\S]*Halted because: skill points 0 after 1 bug/);

    // reinstated from the command line (another process): the guard asks the bridge, and lets the call run
    assert.match(cliText(["reinstate", "build", "--database", w.database], w), /build reinstated .*SP 0 -> 1, active again/);
    await hooks["tool.execute.before"]({ tool: "bash", sessionID: "ses_bug", callID: "c4" }, { args: { command: "ls" } });
    assert.equal(tracker.agents.get("build")?.halted, false);

    // the user's retrospective; /retro without text says how
    await assert.rejects(
      hooks["command.execute.before"]({ command: "retro", sessionID: "ses_bug", arguments: "fast, but test first next time" }, { parts: [] }),
      /Retrospective recorded for build's commit 1a2b3c4/,
    );
    await assert.rejects(hooks["command.execute.before"]({ command: "retro", sessionID: "ses_bug", arguments: "  " }, { parts: [] }),
      /usage: \/retro/);
    await tracker.bridge.request("flush", {});
    const sheet = cli(["status", "build", "--json", "--database", w.database], w);
    assert.deepEqual(sheet.retrospectives.map((/** @type {any} */ r) => [r.author, r.summary, r.commitHash]), [
      ["agent", "I committed before running the tests", "1a2b3c4"],
      ["user", "fast, but test first next time", "1a2b3c4"],
    ]);
    assert.deepEqual(sheet.retrospectives[0].toImprove, ["run the tests first"]);
    status = await tracker.bridge.request("agent.status", { agentId: "build" });
    assert.equal(status.halted, false);
    await tracker.bridge.dispose();
  });

  test("gradePrompts: false turns the grade toasts off", async () => {
    const w = world("prompts");
    const { hooks, tracker, toasts } = await loadPlugin(w, { gradePrompts: false });
    await waitFor(() => tracker.bridge.ready, 20000, "the bridge");
    await openSession(hooks, "ses_p", w.project);
    const commit = bashCall("ses_p", "call_1", COMMIT, COMMIT_OUT, 0);
    await hooks["tool.execute.after"](commit.input, commit.output);
    const status = await tracker.bridge.request("agent.status", { agentId: "build" });
    assert.equal(status.totalCommits, 1);
    assert.equal(toasts.filter((t) => /grade it with/.test(t.message)).length, 0);
    await tracker.bridge.dispose();
  });

  test("tracker_report and /recommend answer a new project from the other projects of its stack", async () => {
    const w = world("recommend");
    const fastapi = '[project]\ndependencies = ["fastapi"]\n';
    fs.writeFileSync(path.join(w.project, "pyproject.toml"), fastapi);
    const other = path.join(w.root, "other-api");
    fs.mkdirSync(other);
    fs.writeFileSync(path.join(other, "pyproject.toml"), fastapi);
    const { hooks, tracker, toasts } = await loadPlugin(w);
    await waitFor(() => tracker.bridge.ready, 20000, "the bridge");
    // three sessions in another FastAPI project; none in this one
    for (let n = 0; n < 3; n++) {
      const sessionID = `ses_other_${n}`;
      await tracker.bridge.request("session.created", { sessionID, directory: other, agent: { id: "build", provider: "anthropic", model: "claude-sonnet-4-5" } });
      await tracker.bridge.request("tool.executed", { sessionID, callID: `c${n}`, tool: "bash", success: true, args: { command: "git commit -m x" }, output: `[main abc000${n}] x\n` });
      await tracker.bridge.request("grade", { sessionID, grade: 2, grader: "user" });
    }

    /** @type {any} */
    const config = { command: {} };
    await hooks.config(config);
    assert.ok(config.command.recommend?.template, "recommend command declared");
    assert.match(config.command.recommend.description, /agent-tracker/);

    const ctx = { sessionID: "ses_here", messageID: "m", agent: "build", directory: w.project, worktree: w.project,
      abort: new AbortController().signal, metadata() {}, ask: async () => {} };
    const text = await hooks.tool.tracker_report.execute({}, ctx);
    assert.ok(text.startsWith(`${w.project}: a python/fastapi project.\nOnly one setup was used on python/fastapi projects (answered at the exact-stack level): agent build with model anthropic/claude-sonnet-4-5 (3 sessions; score 63.5/100, 80 % interval 49-63). With nothing to compare it with this is no verdict: try another agent or model on this project too.`), text);
    assert.match(text, /"agent": \{\n {4}"build": \{\n {6}"model": "anthropic\/claude-sonnet-4-5"/);
    // the same answer as the command line
    const answer = cli(["recommend", w.project, "--json", "--database", w.database], w);
    assert.equal(text, answer.text.trimEnd());

    // /recommend: handled by the plugin (the model is not called), shown as a toast
    await assert.rejects(
      hooks["command.execute.before"]({ command: "recommend", sessionID: "ses_here", arguments: "" }, { parts: [] }),
      (error) => error instanceof Error && error.message === `agent-tracker: ${text}`,
    );
    const toast = toasts.find((t) => t.variant === "info" && t.message.startsWith(`${w.project}: a python/fastapi project.`));
    assert.ok(toast, JSON.stringify(toasts));
    assert.ok(!toast.message.includes('"model"'), "the toast shows the sentences, not the snippet");

    // /recommend explore and tracker_report {explore: true}: the setup to try next (Thompson sampling)
    const explored = await hooks.tool.tracker_report.execute({ explore: true }, ctx);
    assert.equal(explored, answer.explore.text.trimEnd());
    assert.match(explored, /\nTo learn which is best: try agent build with model anthropic\/claude-sonnet-4-5 next; it has a 100 % chance of being best/);
    await assert.rejects(
      hooks["command.execute.before"]({ command: "recommend", sessionID: "ses_here", arguments: " explore " }, { parts: [] }),
      (error) => error instanceof Error && error.message === `agent-tracker: ${explored}`,
    );
    await assert.rejects(
      hooks["command.execute.before"]({ command: "recommend", sessionID: "ses_here", arguments: "bogus" }, { parts: [] }),
      (error) => error instanceof Error && error.message === 'agent-tracker: /recommend takes nothing or "explore" (the setup to try next); got "bogus".',
    );
    await tracker.bridge.dispose();
  });

  test("options reach the bridge: databasePath, maxDatabaseSize; invalid ones disable tracking once", async () => {
    const w = world("options");
    const { tracker } = await loadPlugin(w, { maxDatabaseSize: "64MiB" });
    await waitFor(() => tracker.bridge.ready, 20000, "the bridge");
    assert.equal(tracker.bridge.serverInfo.database.path, w.database);
    assert.equal(tracker.bridge.serverInfo.database.mapSize, 64 * 1024 * 1024);
    assert.equal(tracker.bridge.serverInfo.database.available, true);
    await tracker.bridge.dispose();

    const bad = await loadPlugin(world("badoptions"), { maxDatabaseSize: "lots" });
    await waitFor(() => bad.tracker.bridge.state === "failed", 20000, "the bridge to reject the options");
    assert.match(bad.tracker.bridge.reason ?? "", /maxDatabaseSize/);
    const starts = bad.tracker.bridge.starts;
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(bad.tracker.bridge.starts, starts, "no restart for a configuration error");
    assert.equal(bad.logs.filter((l) => l.level === "error").length, 1, JSON.stringify(bad.logs));
    assert.equal(bad.toasts.length, 1);
    assert.match(bad.toasts[0].message, /maxDatabaseSize/);
    // hooks keep working
    await bad.hooks.event({ event: sessionCreated("ses_x", w.project) });
    const after = bashCall("ses_x", "c", "ls", "a\n", 0);
    await bad.hooks["tool.execute.after"](after.input, after.output);
    await bad.tracker.bridge.dispose();
  });
});

describe("when the bridge is missing or crashes", () => {
  test("a missing bridge: one log line, one toast, OpenCode keeps working, retries in the background", async () => {
    const w = world("missing");
    const { hooks, tracker, logs, toasts } = await loadPlugin(w, { bridgeCommand: ["/nonexistent/agent-tracker", "serve"] });
    await waitFor(() => tracker.bridge.starts >= 3, 5000, "background retries");
    assert.equal(tracker.bridge.ready, false);
    const errors = logs.filter((l) => l.level === "error");
    assert.equal(errors.length, 1, JSON.stringify(logs));
    assert.match(errors[0].message, /tracking is disabled: the bridge command "\/nonexistent\/agent-tracker" was not found/);
    assert.equal(toasts.length, 1);
    assert.equal(toasts[0].variant, "warning");

    // every hook still works and none throws
    await hooks.event({ event: sessionCreated("ses_m", w.project) });
    const [input, output] = chatMessage("ses_m");
    await hooks["chat.message"](input, output);
    await hooks["tool.execute.before"]({ tool: "bash", sessionID: "ses_m", callID: "c1" }, { args: { command: "ls" } });
    const call = bashCall("ses_m", "c1", COMMIT, COMMIT_OUT, 0);
    await hooks["tool.execute.after"](call.input, call.output);
    await hooks["command.execute.before"]({ command: "review", sessionID: "ses_m", arguments: "" }, { parts: [] });
    await hooks.event({ event: { id: "e", type: "session.idle", properties: { sessionID: "ses_m" } } });
    const ctx = { sessionID: "ses_m", messageID: "m", agent: "build", directory: w.project, worktree: w.project,
      abort: new AbortController().signal, metadata() {}, ask: async () => {} };
    assert.match(await hooks.tool.tracker_status.execute({}, ctx), /not available: the bridge command/);
    await assert.rejects(hooks["command.execute.before"]({ command: "grade", sessionID: "ses_m", arguments: "5" }, { parts: [] }), /\/grade failed: the agent-tracker bridge is not available/);
    assert.ok(tracker.bridge.queue.length > 0, "events wait for the bridge");
    await hooks.dispose?.();
    assert.equal(tracker.bridge.state, "disposed");
    assert.equal(logs.filter((l) => l.level === "error").length, 1);
  });

  test("a crash mid-session: restart, the session is told again, later events are stored, no hook fails", async () => {
    const w = world("crash");
    const { hooks, tracker, logs, toasts } = await loadPlugin(w);
    await waitFor(() => tracker.bridge.ready, 20000, "the bridge");
    await openSession(hooks, "ses_crash", w.project);
    const first = bashCall("ses_crash", "c1", COMMIT, COMMIT_OUT, 0);
    await hooks["tool.execute.after"](first.input, first.output);
    await tracker.bridge.request("flush", {});

    const pid = tracker.bridge.child?.pid;
    assert.ok(pid);
    process.kill(pid, "SIGKILL");
    await waitFor(() => !tracker.bridge.ready, 5000, "the crash to be noticed");
    // events during the outage are queued, hooks do not fail
    const second = bashCall("ses_crash", "c2", "git commit -m 'fix: y'", "[main 2b3c4d5] fix: y\n 1 file changed\n", 0);
    await hooks["tool.execute.after"](second.input, second.output);
    await waitFor(() => tracker.bridge.ready, 20000, "the restart");
    assert.notEqual(tracker.bridge.child?.pid, pid);

    const status = await tracker.bridge.request("agent.status", { sessionID: "ses_crash" });
    assert.equal(status.agentId, "build", "the new bridge knows the session's agent");
    assert.equal(status.totalCommits, 2, "the commit made while the bridge was down is stored");
    assert.equal(logs.filter((l) => l.level === "error").length, 1, JSON.stringify(logs));
    assert.ok(logs.some((l) => /the bridge is back/.test(l.message)));
    assert.equal(toasts.filter((t) => /disabled/.test(t.message)).length, 1);
    await hooks.dispose?.();
  });
});
