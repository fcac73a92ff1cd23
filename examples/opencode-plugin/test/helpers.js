// Test harness: a realistic PluginInput (stub SDK client whose methods record calls), the real
// bridge command, temp homes, the CLI, and replay of recorded OpenCode sessions.

import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { AgentTrackerPlugin } from "../plugin/agent-tracker/index.js";
import { trackers } from "../plugin/agent-tracker/tracker.js";

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const PKG = path.resolve(HERE, "..");
export const REPO = path.resolve(PKG, "..", "..");
export const FIXTURES = path.join(HERE, "fixtures");
export const SESSION_FIXTURE = path.join(FIXTURES, "opencode-1.18.33-session.jsonl");
/** The plugin's recording of the run that wrote tests/fixtures/opencode/opencode.db. */
export const HISTORY_FIXTURE = path.join(FIXTURES, "opencode-1.18.33-history.jsonl");

/** The Python that runs the bridge: AGENT_TRACKER_TEST_PYTHON, the repo's venv, or python3. */
export function python() {
  if (process.env.AGENT_TRACKER_TEST_PYTHON) return process.env.AGENT_TRACKER_TEST_PYTHON;
  const venv = path.join(REPO, ".venv", "bin", "python");
  return fs.existsSync(venv) ? venv : "python3";
}

/** `python -m bridge serve`, run from the repo so the package imports. */
export function bridgeCommand() {
  return [python(), "-m", "bridge", "serve"];
}

/**
 * A temp folder for one test: home, project, database.
 * @param {string} name
 */
export function tempWorld(name) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `at-plugin-${name}-`));
  const home = path.join(root, "home");
  const project = path.join(root, "project");
  fs.mkdirSync(home, { recursive: true });
  fs.mkdirSync(project, { recursive: true });
  return {
    root,
    home,
    project,
    database: path.join(root, "db", "agent-tracker.lmdb"),
    env: {
      HOME: home,
      XDG_CONFIG_HOME: path.join(home, ".config"),
      PYTHONPATH: REPO,
    },
    cleanup() {
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

/**
 * The SDK client surface the plugin uses (`client.app.log`, `client.tui.showToast`), shaped
 * like `@opencode-ai/sdk`'s OpencodeClient (methods take `{body}` and return promises).
 */
export function stubClient() {
  /** @type {Array<{level: string, message: string, extra?: unknown}>} */
  const logs = [];
  /** @type {Array<{title?: string, message: string, variant: string}>} */
  const toasts = [];
  const client = {
    app: {
      /** @param {{body: {service: string, level: string, message: string, extra?: unknown}}} options */
      log: async (options) => {
        logs.push(options.body);
        return { data: true };
      },
      agents: async () => ({ data: [] }),
    },
    tui: {
      /** @param {{body: {title?: string, message: string, variant: string}}} options */
      showToast: async (options) => {
        toasts.push(options.body);
        return { data: true };
      },
    },
    session: {},
  };
  return { client, logs, toasts };
}

/**
 * A PluginInput like OpenCode 1.18 passes (see the recorded `init` in the fixtures).
 * @param {string} directory
 * @param {any} client
 * @returns {any}
 */
export function pluginInput(directory, client) {
  return {
    client,
    project: { id: "test-project", worktree: directory, vcs: "git", sandboxes: [], time: { created: Date.now(), updated: Date.now() } },
    directory,
    worktree: directory,
    experimental_workspace: { register() {} },
    serverUrl: new URL("http://127.0.0.1:4096"),
    $: undefined,
  };
}

/**
 * Loads the plugin the way OpenCode does and returns the hooks and its tracker.
 * @param {ReturnType<typeof tempWorld>} world
 * @param {Record<string, unknown>} [options]
 */
export async function loadPlugin(world, options = {}) {
  const { client, logs, toasts } = stubClient();
  /** @type {any} hooks as OpenCode holds them (every hook present) */
  const hooks = await AgentTrackerPlugin(pluginInput(world.project, client), {
    bridgeCommand: bridgeCommand(),
    databasePath: world.database,
    bridgeEnv: world.env,
    restartInitialMs: 100,
    restartMaxMs: 400,
    ...options,
  });
  const tracker = trackers.get(hooks);
  if (!tracker) throw new Error("no tracker for the hooks");
  return { hooks, tracker, logs, toasts, client };
}

/**
 * @param {() => boolean | Promise<boolean>} predicate
 * @param {number} [timeoutMs]
 * @param {string} [what]
 */
export async function waitFor(predicate, timeoutMs = 15000, what = "condition") {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await predicate()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * Runs `agent-tracker <args>` (as `python -m bridge`) and parses its JSON output.
 * @param {string[]} args
 * @param {ReturnType<typeof tempWorld>} world
 */
export function cli(args, world) {
  return JSON.parse(cliText(args, world));
}

/**
 * Runs `agent-tracker <args>` (as `python -m bridge`) and returns what it printed.
 * @param {string[]} args
 * @param {ReturnType<typeof tempWorld>} world
 */
export function cliText(args, world) {
  const proc = spawnSync(python(), ["-m", "bridge", ...args], {
    cwd: REPO,
    env: { ...process.env, ...world.env },
    encoding: "utf8",
    timeout: 60000,
  });
  if (proc.status !== 0) throw new Error(`agent-tracker ${args.join(" ")} failed (${proc.status}): ${proc.stderr}${proc.stdout}`);
  return proc.stdout;
}

/**
 * A recorded OpenCode session (JSON lines written by the plugin's recorder), with the
 * recording's project path replaced by `directory`.
 * @param {string} file
 * @param {string} directory
 * @returns {Array<{hook: string, t: number, input: any, output: any}>}
 */
export function loadRecording(file, directory) {
  const metaPath = file.replace(/\.jsonl$/, ".meta.json");
  const meta = fs.existsSync(metaPath) ? JSON.parse(fs.readFileSync(metaPath, "utf8")) : {};
  let text = fs.readFileSync(file, "utf8");
  if (meta.project) text = text.split(meta.project).join(directory);
  return text.split("\n").filter((line) => line.trim()).map((line) => JSON.parse(line));
}

/**
 * Feeds a recording into the plugin's hooks, as OpenCode would. The plugin's own tools are
 * executed when the recording shows OpenCode calling them.
 * @param {any} hooks
 * @param {ReturnType<typeof loadRecording>} records
 * @param {{onCommandError?: (error: Error) => void, stopAt?: string}} [options]
 */
export async function replay(hooks, records, options = {}) {
  for (const r of records) {
    if (options.stopAt && r.hook === options.stopAt) return;
    switch (r.hook) {
      case "event":
        await hooks.event({ event: r.input });
        break;
      case "chat.message":
        await hooks["chat.message"](r.input, r.output);
        break;
      case "tool.execute.before":
        await hooks["tool.execute.before"](r.input, r.output);
        if (hooks.tool?.[r.input.tool]) {
          await hooks.tool[r.input.tool].execute(r.output.args, {
            sessionID: r.input.sessionID, messageID: "msg", agent: "build", directory: "", worktree: "",
            abort: new AbortController().signal, metadata() {}, ask: async () => {},
          });
        }
        break;
      case "tool.execute.after":
        await hooks["tool.execute.after"](r.input, r.output);
        break;
      case "command.execute.before":
        try {
          await hooks["command.execute.before"](r.input, r.output);
        } catch (error) {
          options.onCommandError?.(/** @type {Error} */ (error));
        }
        break;
      default:
        break; // init, dispose: driven by the test
    }
  }
}

/**
 * An OpenCode `tool.execute.after` pair for a bash call, shaped like the recorded ones.
 * @param {string} sessionID
 * @param {string} callID
 * @param {string} command
 * @param {string} output
 * @param {number} exit
 */
export function bashCall(sessionID, callID, command, output, exit) {
  return {
    input: { tool: "bash", sessionID, callID, args: { command, description: "run" } },
    output: { title: command, metadata: { output, exit, truncated: false }, output },
  };
}

/**
 * OpenCode's `session.created` event for a new session.
 * @param {string} sessionID
 * @param {string} directory
 */
export function sessionCreated(sessionID, directory) {
  return {
    id: `evt_${sessionID}`,
    type: "session.created",
    properties: {
      sessionID,
      info: {
        id: sessionID, slug: "test", version: "1.18.33", projectID: "test-project", directory, path: "",
        title: "New session", cost: 0, tokens: { input: 0, output: 0, reasoning: 0, cache: { read: 0, write: 0 } },
        time: { created: Date.now(), updated: Date.now() },
      },
    },
  };
}

/**
 * OpenCode's `chat.message` hook arguments (1.18: the agent and model are on output.message).
 * @param {string} sessionID
 * @param {string} [agent]
 */
export function chatMessage(sessionID, agent = "build") {
  return [
    { sessionID },
    {
      message: { id: `msg_${sessionID}`, role: "user", sessionID, time: { created: Date.now() }, agent, model: { providerID: "scripted", modelID: "scripted" } },
      parts: [{ type: "text", text: "hi", id: "prt_1", sessionID, messageID: `msg_${sessionID}` }],
    },
  ];
}
