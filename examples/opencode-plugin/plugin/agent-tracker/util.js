// Small pure helpers of the agent-tracker OpenCode plugin: options, excerpts, grades, recording.
// Plain ESM JavaScript with JSDoc types (checked by `npm run check`), so it runs unbuilt in
// OpenCode's Bun and in Node.

import fs from "node:fs";

/** Default size of the head and of the tail kept by {@link excerpt} (bytes of UTF-16 text). */
export const EXCERPT_HALF = 2048;

/**
 * A bounded excerpt of a tool output: the whole text when short, else the first and the last
 * `half` characters around a marker saying how much was left out.
 * @param {unknown} text
 * @param {number} [half]
 * @returns {string | undefined}
 */
export function excerpt(text, half = EXCERPT_HALF) {
  if (typeof text !== "string") return undefined;
  if (text.length <= 2 * half + 64) return text;
  const omitted = text.length - 2 * half;
  return `${text.slice(0, half)}\n…[agent-tracker: ${omitted} characters omitted]…\n${text.slice(-half)}`;
}

/**
 * Tool args as OpenCode gave them, with long top-level strings (file contents of `write`,
 * `edit`, patches) cut to an excerpt so one call never ships megabytes to the bridge.
 * @param {unknown} args
 * @param {number} [half]
 * @returns {Record<string, unknown> | undefined}
 */
export function boundArgs(args, half = EXCERPT_HALF) {
  if (!args || typeof args !== "object" || Array.isArray(args)) return undefined;
  /** @type {Record<string, unknown> | undefined} */
  let copy;
  const record = /** @type {Record<string, unknown>} */ (args);
  for (const key in record) {
    const value = record[key];
    if (typeof value === "string" && value.length > 2 * half + 64) {
      copy ??= { ...record };
      copy[key] = excerpt(value, half);
    }
  }
  return copy ?? record;
}

/**
 * Whether a tool call that reached `tool.execute.after` succeeded.
 *
 * What real OpenCode 1.18 sends (recorded, see test/fixtures/): `bash` reports
 * `metadata: {output, exit, truncated}`, so success is `exit === 0` (a missing or `null` exit —
 * killed, timed out, aborted — is a failure). Every other built-in tool that fails *throws*,
 * and then OpenCode never calls `tool.execute.after`: the failure only shows as a
 * `message.part.updated` event whose tool part has `state.status === "error"` (the plugin
 * reports those separately). So reaching this hook means success, unless the metadata says
 * otherwise (`metadata.error`, or MCP-style `metadata.isError === true`).
 * @param {string} tool
 * @param {{metadata?: any} | undefined} output
 */
export function toolSucceeded(tool, output) {
  const md = output?.metadata;
  if (tool === "bash") return !!md && md.exit === 0;
  if (md && typeof md === "object") {
    if (md.isError === true) return false;
    if (md.error) return false;
    if (typeof md.exit === "number") return md.exit === 0;
  }
  return true;
}

/**
 * @typedef {object} UsageParams the bridge's `usage.recorded` params (protocol/schema.json)
 * @property {string} sessionID
 * @property {string} messageID
 * @property {number} cost US dollars, >= 0
 * @property {{input: number, output: number, reasoning: number, cacheRead: number, cacheWrite: number}} tokens
 * @property {{id: string, model?: string, provider?: string}} [agent]
 * @property {number} [durationMs]
 */

/**
 * The `usage.recorded` params of an assistant message as OpenCode's `message.updated` carries it
 * (`info`), or undefined until the message has completed (`time.completed`): OpenCode sends each
 * message three times, with its usage from the second on and complete on the third. Tokens are
 * OpenCode's kinds (`input` without cache reads/writes, `output` without reasoning); anything
 * that is not a number >= 0 counts 0, so the bridge never refuses the event.
 * bridge/opencode/replay.py builds the same params from OpenCode's database.
 * @param {any} info
 * @returns {UsageParams | undefined}
 */
export function usageParams(info) {
  if (!info || info.role !== "assistant") return undefined;
  const messageID = nonEmpty(info.id);
  const sessionID = nonEmpty(info.sessionID);
  const completed = info.time?.completed;
  if (!messageID || !sessionID || typeof completed !== "number" || !Number.isFinite(completed)) return undefined;
  const tokens = info.tokens && typeof info.tokens === "object" ? info.tokens : {};
  const cache = tokens.cache && typeof tokens.cache === "object" ? tokens.cache : {};
  /** @type {UsageParams} */
  const params = {
    sessionID,
    messageID,
    cost: amount(info.cost),
    tokens: {
      input: count(tokens.input),
      output: count(tokens.output),
      reasoning: count(tokens.reasoning),
      cacheRead: count(cache.read),
      cacheWrite: count(cache.write),
    },
  };
  const agent = nonEmpty(info.agent) ?? nonEmpty(info.mode);
  if (agent) {
    /** @type {{id: string, model?: string, provider?: string}} */
    const ref = { id: agent };
    const model = nonEmpty(info.modelID);
    const provider = nonEmpty(info.providerID);
    if (model) ref.model = model;
    if (provider) ref.provider = provider;
    params.agent = ref;
  }
  const created = info.time?.created;
  if (typeof created === "number" && Number.isFinite(created) && completed >= created) {
    params.durationMs = Math.round(completed - created);
  }
  return params;
}

/** A token count: a finite number > 0, whole (truncated), else 0. @param {unknown} value */
function count(value) {
  return typeof value === "number" && Number.isFinite(value) && value > 0 ? Math.trunc(value) : 0;
}

/** Dollars: a finite number > 0, else 0. @param {unknown} value */
function amount(value) {
  return typeof value === "number" && Number.isFinite(value) && value > 0 ? value : 0;
}

/** Grade names and values accepted by the bridge (exactly these). */
export const GRADES = /** @type {const} */ ({ bad: -1, neutral: 1, good: 2, excellence: 5 });
export const VALID_GRADES_TEXT = "-1 (bad), 1 (neutral), 2 (good) or 5 (excellence)";

/**
 * A grade from user text: "-1", "1", "+1", "2", "5" or a name. Returns the number, or
 * undefined when it is not one of the four grades.
 * @param {unknown} value
 * @returns {-1 | 1 | 2 | 5 | undefined}
 */
export function parseGrade(value) {
  if (typeof value === "number") {
    return value === -1 || value === 1 || value === 2 || value === 5 ? value : undefined;
  }
  if (typeof value !== "string") return undefined;
  const text = value.trim().toLowerCase();
  if (text in GRADES) return GRADES[/** @type {keyof typeof GRADES} */ (text)];
  if (!/^[+-]?\d+$/.test(text)) return undefined;
  return parseGrade(Number(text));
}

/**
 * `/grade <grade> [reason]` arguments → grade and reason.
 * @param {string} args
 * @returns {{grade: -1 | 1 | 2 | 5, reason?: string} | {error: string}}
 */
export function parseGradeArguments(args) {
  const text = (args ?? "").trim();
  const match = /^(\S+)\s*([\s\S]*)$/.exec(text);
  if (!match) return { error: `usage: /grade <grade> [reason], where grade is ${VALID_GRADES_TEXT}` };
  const grade = parseGrade(match[1]);
  if (grade === undefined) {
    return { error: `invalid grade "${match[1]}": use ${VALID_GRADES_TEXT}` };
  }
  const reason = match[2].trim();
  return reason ? { grade, reason } : { grade };
}

/**
 * @typedef {object} TrackerOptions
 * @property {string[]} bridgeCommand command that starts the bridge (`agent-tracker serve`)
 * @property {Record<string, unknown>} bridgeConfig the `config` sent with `initialize`
 * @property {Record<string, string>} bridgeEnv extra environment for the bridge
 * @property {string | undefined} record file to append raw hook inputs to (JSON lines)
 * @property {boolean} enabled
 * @property {number} restartInitialMs first restart delay after a crash
 * @property {number} restartMaxMs longest restart delay (backoff doubles up to it)
 * @property {number} initializeTimeoutMs
 * @property {number} requestTimeoutMs
 * @property {number} maxQueue events kept while the bridge is down (oldest dropped beyond)
 * @property {number} excerptHalf
 * @property {boolean} toasts show toasts through the TUI (client.tui.showToast)
 * @property {boolean} gradePrompts after each new commit, one toast asking the user to grade it
 */

/** Options forwarded to the bridge's `initialize` as `config`. */
const BRIDGE_CONFIG_KEYS = ["databasePath", "maxDatabaseSize", "flushIntervalSeconds", "journalSyncMilliseconds", "scoring"];

/**
 * @param {unknown} value
 * @returns {string[] | undefined}
 */
function commandList(value) {
  if (Array.isArray(value) && value.length > 0 && value.every((v) => typeof v === "string" && v)) {
    return /** @type {string[]} */ (value);
  }
  if (typeof value === "string" && value.trim()) {
    const text = value.trim();
    if (text.startsWith("[")) {
      try {
        return commandList(JSON.parse(text));
      } catch {
        return undefined;
      }
    }
    return text.split(/\s+/);
  }
  return undefined;
}

/**
 * @param {unknown} value
 * @param {number} fallback
 */
function positive(value, fallback) {
  return typeof value === "number" && Number.isFinite(value) && value > 0 ? value : fallback;
}

/**
 * The plugin's options: OpenCode passes the user's options from `opencode.json`
 * (`"plugin": [["<spec>", {...}]]`); environment variables override for tests and recording
 * (`AGENT_TRACKER_BRIDGE_COMMAND`, `AGENT_TRACKER_PLUGIN_RECORD`, `AGENT_TRACKER_DISABLE=1`); the
 * bridge itself also reads `AGENT_TRACKER_DATABASE_PATH`.
 * Bridge options (`databasePath`, `maxDatabaseSize`, `flushIntervalSeconds`, `journalSyncMilliseconds`,
 * `scoring`) are
 * passed through unvalidated: the bridge validates them and names the bad one.
 * @param {Record<string, unknown> | undefined} raw
 * @param {Record<string, string | undefined>} env
 * @returns {TrackerOptions}
 */
export function normalizeOptions(raw, env = process.env) {
  const o = raw && typeof raw === "object" ? raw : {};
  /** @type {Record<string, unknown>} */
  const bridgeConfig = {};
  for (const key of BRIDGE_CONFIG_KEYS) if (o[key] !== undefined) bridgeConfig[key] = o[key];
  /** @type {Record<string, string>} */
  const bridgeEnv = {};
  if (o.bridgeEnv && typeof o.bridgeEnv === "object") {
    for (const [k, v] of Object.entries(o.bridgeEnv)) if (typeof v === "string") bridgeEnv[k] = v;
  }
  const record = typeof o.record === "string" && o.record ? o.record : env.AGENT_TRACKER_PLUGIN_RECORD || undefined;
  return {
    bridgeCommand: commandList(env.AGENT_TRACKER_BRIDGE_COMMAND) ??
      commandList(o.bridgeCommand) ?? ["agent-tracker", "serve"],
    bridgeConfig,
    bridgeEnv,
    record,
    enabled: o.enabled !== false && env.AGENT_TRACKER_DISABLE !== "1",
    restartInitialMs: positive(o.restartInitialMs, 1000),
    restartMaxMs: positive(o.restartMaxMs, 60_000),
    initializeTimeoutMs: positive(o.initializeTimeoutMs, 20_000),
    requestTimeoutMs: positive(o.requestTimeoutMs, 10_000),
    maxQueue: positive(o.maxQueue, 5000),
    excerptHalf: positive(o.excerptHalf, EXCERPT_HALF),
    toasts: o.toasts !== false,
    gradePrompts: o.gradePrompts !== false,
  };
}

/**
 * A set that forgets its oldest entries beyond `limit` (what the plugin remembers stays bounded
 * however long OpenCode runs).
 */
export class BoundedSet {
  /** @param {number} limit */
  constructor(limit) {
    this.limit = limit;
    /** @type {Set<string>} */
    this.items = new Set();
  }

  /** @param {string} item */
  has(item) {
    return this.items.has(item);
  }

  /** @param {string} item */
  add(item) {
    if (this.items.size >= this.limit && !this.items.has(item)) {
      const first = this.items.values().next();
      if (!first.done) this.items.delete(first.value);
    }
    this.items.add(item);
  }
}

/**
 * Appends the raw hook inputs the plugin saw to a JSON-lines file, so a real OpenCode session
 * can become a test fixture: `{"hook": ..., "t": epochMs, "input": ..., "output": ...}`.
 * Writes go through one append stream (ordered, off the hot path).
 */
export class Recorder {
  /** @param {string} path */
  constructor(path) {
    this.path = path;
    /** @type {fs.WriteStream | undefined} */
    this.stream = fs.createWriteStream(path, { flags: "a" });
    this.stream.on("error", () => {
      this.stream = undefined;
    });
  }

  /**
   * @param {string} hook
   * @param {unknown} input
   * @param {unknown} [output]
   */
  write(hook, input, output) {
    if (!this.stream) return;
    let line;
    try {
      line = JSON.stringify({ hook, t: Date.now(), input, output });
    } catch {
      line = JSON.stringify({ hook, t: Date.now(), error: "unserializable" });
    }
    this.stream.write(line + "\n");
  }

  /** @returns {Promise<void>} */
  close() {
    const stream = this.stream;
    this.stream = undefined;
    if (!stream) return Promise.resolve();
    return new Promise((resolve) => stream.end(() => resolve()));
  }
}

/**
 * A non-empty string, else undefined.
 * @param {unknown} value
 * @returns {string | undefined}
 */
export function nonEmpty(value) {
  return typeof value === "string" && value ? value : undefined;
}
