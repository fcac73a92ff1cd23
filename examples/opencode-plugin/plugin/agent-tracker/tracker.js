// Maps OpenCode's real hooks and bus events to the bridge's wire contract.
//
// Verified against OpenCode 1.18.33 (recorded payloads in test/fixtures/):
//  - `event({event})` gets every bus event of this instance as `{id, type, properties}`:
//    session.created/updated/deleted `{sessionID, info: Session}`, session.idle `{sessionID}`,
//    message.updated `{sessionID, info: Message}` (user: `agent`, `model: {providerID, modelID}`;
//    assistant: `agent`, `mode`, `providerID`, `modelID`, `cost`, `tokens`, `time {created, completed}`;
//    repeated three times per assistant message, complete with `time.completed` on the third:
//    that one becomes `usage.recorded`), message.part.updated `{part}`,
//    command.executed `{name, sessionID, arguments, messageID}`.
//  - `chat.message(input, output)`: input may be only `{sessionID}`; the agent and model are in
//    `output.message` (`agent`, `model: {providerID, modelID}`).
//  - `tool.execute.before({tool, sessionID, callID}, {args})` — throwing blocks the call.
//  - `tool.execute.after({tool, sessionID, callID, args}, {title, output, metadata})` — only for
//    calls that did not throw; failed calls only show as tool parts with state "error".
//  - `command.execute.before({command, sessionID, arguments}, {parts})` — only for commands
//    OpenCode knows (config `command`), which is why the `config` hook adds `grade`, `bug`,
//    `retro` and `recommend`.
//  - `dispose()` when the instance is disposed (not on SIGTERM: the bridge then sees EOF).

import { BridgeClient, message } from "./bridge.js";
import { COMMANDS, userCommands } from "./commands.js";
import { ConfigCapture } from "./configs.js";
import { trackerTools } from "./tools.js";
import {
  BoundedSet,
  Recorder,
  boundArgs,
  excerpt,
  nonEmpty,
  normalizeOptions,
  toolSucceeded,
  usageParams,
} from "./util.js";

/** @typedef {import("@opencode-ai/plugin").PluginInput} PluginInput */
/** @typedef {import("@opencode-ai/plugin").Hooks} Hooks */
/** @typedef {import("./util.js").TrackerOptions} TrackerOptions */
/** @typedef {{id: string, model?: string, provider?: string}} AgentRef */
/** @typedef {{directory?: string, title?: string, parentID?: string, agent?: AgentRef}} SessionInfo */
/**
 * @typedef {object} AgentStatus
 * @property {string} agentId
 * @property {boolean} halted
 * @property {number} [skillPoints]
 * @property {number} [experiencePoints]
 * @property {number} [communicationScore]
 * @property {number} [totalCommits]
 * @property {number} [totalBugs]
 * @property {number} [pendingChanges]
 * @property {string} [haltReason] only when halted: why (its SP and bugs, the latest bug or revert)
 */

export const VERSION = "0.1.0";
export const SERVICE = "agent-tracker";
/** The plugin's own tools: meta calls, never reported as `tool.executed`. */
export const TRACKER_TOOLS = new Set(["tracker_grade", "tracker_status", "tracker_report", "tracker_retro"]);
/** Tools a halted agent may still use: reading its own sheet and the report, looking back on its work. */
const ALLOWED_WHEN_HALTED = new Set(["tracker_status", "tracker_report", "tracker_retro"]);
const SEEN_CALLS_LIMIT = 4096;
const USAGE_SENT_LIMIT = 4096;
/** How long the halt guard waits for the bridge's fresh answer before it blocks on what it knows. */
const HALT_CHECK_MS = 2000;

/** Per-hooks-object access to the tracker, for tests and the benchmark. */
/** @type {WeakMap<object, Tracker>} */
export const trackers = new WeakMap();

export class Tracker {
  /**
   * @param {PluginInput} input
   * @param {Record<string, unknown> | undefined} rawOptions
   * @param {{env?: Record<string, string | undefined>, loadRpc?: () => Promise<any>}} [deps]
   */
  constructor(input, rawOptions, deps = {}) {
    this.input = input;
    this.client = input.client;
    this.directory = input.directory;
    /** @type {TrackerOptions} */
    this.options = normalizeOptions(rawOptions, deps.env ?? process.env);
    this.recorder = this.options.record ? new Recorder(this.options.record) : undefined;
    /** @type {Map<string, SessionInfo>} */
    this.sessions = new Map();
    /** @type {Map<string, AgentStatus>} last known state per bridge agent id */
    this.agents = new Map();
    /** @type {Set<string>} agents whose status was asked for (once each) */
    this.asked = new Set();
    /** @type {Set<string>} callIDs already reported or blocked by the halt guard */
    this.seenCalls = new Set();
    /** @type {Map<string, string>} messageID -> the usage.recorded params last sent for it (JSON) */
    this.usageSent = new Map();
    /** commits the user was asked to grade (once each) */
    this.prompted = new BoundedSet(SEEN_CALLS_LIMIT);
    /** @type {Set<string>} slash commands the user's own config defines: never taken over */
    this.userCommands = new Set();
    this.internalErrors = 0;
    /** the agents' whole definitions: `agent.configured` */
    this.configs = new ConfigCapture({
      client: input.client, directory: input.directory,
      notify: (method, params) => this.bridge.notify(method, params),
      internalError: (error, where) => this.internalError(error, where),
    });
    this.bridge = new BridgeClient({
      command: this.options.bridgeCommand,
      cwd: input.directory,
      env: this.options.bridgeEnv,
      initializeParams: () => ({
        clientInfo: { name: "agent-tracker-opencode-plugin", version: VERSION },
        config: this.options.bridgeConfig,
        project: { directory: input.directory, ...(input.worktree && input.worktree !== "/" ? { worktree: input.worktree } : {}) },
      }),
      log: (level, text, extra) => this.log(level, text, extra),
      toast: (text, variant) => this.toast(text, variant),
      onNotification: (method, params) => this.onBridgeNotification(method, params),
      onReady: (result, restarted) => this.onBridgeReady(result, restarted),
      restartInitialMs: this.options.restartInitialMs,
      restartMaxMs: this.options.restartMaxMs,
      initializeTimeoutMs: this.options.initializeTimeoutMs,
      requestTimeoutMs: this.options.requestTimeoutMs,
      maxQueue: this.options.maxQueue,
      loadRpc: deps.loadRpc,
    });
  }

  // ---- OpenCode side: logging and toasts through the real SDK client ----

  /**
   * `client.app.log` (POST /log); never throws, never awaited.
   * @param {"debug" | "info" | "warn" | "error"} level
   * @param {string} text
   * @param {Record<string, unknown>} [extra]
   */
  log(level, text, extra) {
    try {
      const pending = this.client?.app?.log?.({ body: { service: SERVICE, level, message: text, ...(extra ? { extra } : {}) } });
      if (pending && typeof pending.catch === "function") pending.catch(ignore);
    } catch {
      // logging must never break a hook
    }
  }

  /**
   * `client.tui.showToast` (POST /tui/show-toast); never throws, never awaited.
   * @param {string} text
   * @param {"info" | "success" | "warning" | "error"} variant
   */
  toast(text, variant) {
    if (!this.options.toasts) return;
    try {
      const pending = this.client?.tui?.showToast?.({ body: { title: "Agent tracker", message: text, variant } });
      if (pending && typeof pending.catch === "function") pending.catch(ignore);
    } catch {
      // a toast must never break a hook
    }
  }

  /** @param {unknown} error @param {string} where */
  internalError(error, where) {
    this.internalErrors++;
    if (this.internalErrors <= 3) this.log("warn", `agent-tracker: internal error in ${where}: ${message(error)}`);
  }

  // ---- bridge side ----

  /** @param {string} method @param {any} params */
  onBridgeNotification(method, params) {
    if (method === "agent.state") {
      if (params && typeof params.agentId === "string") {
        const before = this.agents.get(params.agentId);
        this.agents.set(params.agentId, { ...before, ...params, halted: params.halted === true });
      }
    } else if (method === "log") {
      const level = params?.level === "warning" ? "warn" : params?.level;
      const valid = level === "debug" || level === "info" || level === "warn" || level === "error" ? level : "info";
      this.log(valid, String(params?.message ?? ""), params?.data && typeof params.data === "object" ? params.data : undefined);
    } else if (method === "toast") {
      const variant = params?.variant;
      const valid = variant === "info" || variant === "success" || variant === "warning" || variant === "error" ? variant : "info";
      this.toast(String(params?.message ?? ""), valid);
    } else if (method === "commit.recorded") {
      this.askForGrade(params);
    }
  }

  /**
   * One toast per new commit asking the user to grade it (`gradePrompts: false` turns them off).
   * @param {any} commit the `commit.recorded` params
   */
  askForGrade(commit) {
    const hash = nonEmpty(commit?.commitHash);
    if (!this.options.gradePrompts || !hash || this.prompted.has(hash)) return;
    this.prompted.add(hash);
    const by = nonEmpty(commit.agentId) ? ` by ${commit.agentId}` : "";
    const subject = nonEmpty(commit.message) ? ` ("${String(commit.message).slice(0, 80)}")` : "";
    this.toast(`Commit ${hash.slice(0, 7)}${by}${subject}: grade it with /grade 5|2|1|-1 [reason]`, "info");
  }

  /** @param {any} result @param {boolean} restarted */
  onBridgeReady(result, restarted) {
    const db = result?.database;
    if (db && db.available === false) {
      const why = db.error ? `: ${db.error}` : "";
      this.log("error", `agent-tracker: the database ${db.path ?? ""} is unavailable${why}`);
      this.toast(`Agent tracking: database unavailable${why}`, "warning");
    } else if (db && db.readOnly) {
      this.log("warn", `agent-tracker: the database ${db.path ?? ""} is read-only; nothing will be recorded`);
    }
    if (restarted) {
      // A new bridge process knows nothing of the live sessions: tell it again, before the
      // events queued during the outage (the client sends those right after this returns).
      for (const [sessionID, s] of this.sessions) {
        this.bridge.notify("session.created", sessionCreatedParams(sessionID, s, this.directory));
      }
      this.asked.clear();
    }
    for (const s of this.sessions.values()) if (s.agent) this.askStatus(s.agent.id);
  }

  /**
   * Asks the bridge for an agent's state once, off the hot path (the halt guard then reads
   * the local copy, kept current by `agent.state` notifications).
   * @param {string} agentId
   */
  askStatus(agentId) {
    if (this.asked.has(agentId) || !this.bridge.ready) return;
    this.asked.add(agentId);
    this.bridge.request("agent.status", { agentId }).then(
      (status) => {
        if (status && typeof status.agentId === "string") {
          this.agents.set(status.agentId, { ...this.agents.get(status.agentId), ...status, halted: status.halted === true });
        }
      },
      () => this.asked.delete(agentId),
    );
  }

  // ---- sessions ----

  /**
   * The session's record, telling the bridge about sessions it has not heard of (sessions that
   * existed before the plugin loaded).
   * @param {string} sessionID
   * @returns {SessionInfo}
   */
  session(sessionID) {
    let s = this.sessions.get(sessionID);
    if (!s) {
      s = { directory: this.directory };
      this.sessions.set(sessionID, s);
      this.bridge.notify("session.created", sessionCreatedParams(sessionID, s, this.directory));
    }
    return s;
  }

  /**
   * Records which agent and model a session uses; tells the bridge only when it changed.
   * @param {string} sessionID
   * @param {unknown} agent
   * @param {unknown} providerID
   * @param {unknown} modelID
   */
  setAgent(sessionID, agent, providerID, modelID) {
    if (typeof sessionID !== "string" || !sessionID) return;
    const s = this.session(sessionID);
    const prev = s.agent;
    const id = nonEmpty(agent) ?? prev?.id;
    if (!id) return;
    const sameAgent = prev?.id === id;
    const model = nonEmpty(modelID) ?? (sameAgent ? prev?.model : undefined);
    const provider = nonEmpty(providerID) ?? (sameAgent ? prev?.provider : undefined);
    if (prev && prev.id === id && prev.model === model && prev.provider === provider) return;
    /** @type {AgentRef} */
    const next = { id };
    if (model) next.model = model;
    if (provider) next.provider = provider;
    s.agent = next;
    this.bridge.notify("session.updated", { sessionID, agent: next });
    this.askStatus(id);
  }

  /** @param {any} event */
  onEvent(event) {
    const type = event?.type;
    const p = event?.properties;
    if (!p) return;
    switch (type) {
      case "message.part.updated": {
        const part = p.part;
        if (part?.type === "tool" && part.state?.status === "error") this.onToolError(part);
        return;
      }
      case "message.updated": {
        const info = p.info;
        if (!info?.sessionID) return;
        if (info.role === "user") this.setAgent(info.sessionID, info.agent, info.model?.providerID, info.model?.modelID);
        else if (info.role === "assistant") {
          this.setAgent(info.sessionID, info.agent ?? info.mode, info.providerID, info.modelID);
          this.recordUsage(info);
        }
        return;
      }
      case "session.created": {
        const info = p.info;
        const sessionID = info?.id ?? p.sessionID;
        if (typeof sessionID !== "string") return;
        const known = this.sessions.get(sessionID);
        /** @type {SessionInfo} */
        const s = known ?? {};
        const parentBefore = s.parentID;
        s.directory = nonEmpty(info?.directory) ?? this.directory;
        s.title = nonEmpty(info?.title);
        s.parentID = nonEmpty(info?.parentID);
        // Told again when a session first seen through another event turns out to be a
        // subagent's: its parentID is what credits its work to the session that started it.
        if (!known || (s.parentID && s.parentID !== parentBefore)) {
          this.sessions.set(sessionID, s);
          this.bridge.notify("session.created", sessionCreatedParams(sessionID, s, this.directory));
        }
        if (typeof info?.agent === "string") this.setAgent(sessionID, info.agent, info.model?.providerID, info.model?.id ?? info.model?.modelID);
        return;
      }
      case "session.updated": {
        // OpenCode 1.18 puts the session's current agent and model on the session itself.
        const info = p.info;
        const sessionID = info?.id ?? p.sessionID;
        if (typeof sessionID === "string" && typeof info?.agent === "string") {
          this.setAgent(sessionID, info.agent, info.model?.providerID, info.model?.id ?? info.model?.modelID);
        }
        // OpenCode names a session "New session - <time>" at creation and gives it its real title
        // later, in session.updated: sent when it changes, so the tracked title is the real one.
        const title = nonEmpty(info?.title);
        if (typeof sessionID === "string" && title) {
          const s = this.session(sessionID);
          if (s.title !== title) {
            s.title = title;
            this.bridge.notify("session.updated", { sessionID, title });
          }
        }
        return;
      }
      case "session.idle": {
        if (typeof p.sessionID !== "string") return;
        this.session(p.sessionID);
        this.bridge.notify("session.idle", { sessionID: p.sessionID });
        return;
      }
      case "session.deleted": {
        const sessionID = p.info?.id ?? p.sessionID;
        if (typeof sessionID !== "string") return;
        this.bridge.notify("session.deleted", { sessionID });
        this.sessions.delete(sessionID);
        return;
      }
      case "command.executed": {
        if (typeof p.sessionID !== "string" || typeof p.name !== "string") return;
        const s = this.session(p.sessionID);
        this.bridge.notify("command.executed", {
          sessionID: p.sessionID,
          command: p.name,
          success: true,
          ...(s.agent ? { agentId: s.agent.id } : {}),
          ...(typeof p.arguments === "string" && p.arguments ? { arguments: p.arguments } : {}),
        });
        return;
      }
      default:
        return;
    }
  }

  /**
   * A tool call that threw (OpenCode does not call `tool.execute.after` for those).
   * @param {any} part
   */
  onToolError(part) {
    const { sessionID, callID, tool } = part;
    if (typeof sessionID !== "string" || typeof callID !== "string" || typeof tool !== "string") return;
    if (TRACKER_TOOLS.has(tool) || this.seenCalls.has(callID)) return;
    this.remember(callID);
    const s = this.session(sessionID);
    this.bridge.notify("tool.executed", {
      sessionID,
      callID,
      tool,
      success: false,
      ...(s.agent ? { agentId: s.agent.id } : {}),
      args: boundArgs(part.state.input, this.options.excerptHalf),
      output: excerpt(String(part.state.error ?? ""), this.options.excerptHalf),
    });
  }

  /**
   * What a completed assistant message cost: `usage.recorded` once per message, again only if
   * OpenCode changes its numbers later (the bridge replaces, so a repeat would do no harm).
   * @param {any} info
   */
  recordUsage(info) {
    const params = usageParams(info);
    if (!params) return;
    const sent = JSON.stringify(params);
    if (this.usageSent.get(params.messageID) === sent) return;
    if (this.usageSent.size >= USAGE_SENT_LIMIT) {
      const first = this.usageSent.keys().next();
      if (!first.done) this.usageSent.delete(first.value);
    }
    this.usageSent.set(params.messageID, sent);
    this.session(params.sessionID);
    this.bridge.notify("usage.recorded", params);
  }

  /** @param {string} callID */
  remember(callID) {
    if (this.seenCalls.size >= SEEN_CALLS_LIMIT) {
      const first = this.seenCalls.values().next();
      if (!first.done) this.seenCalls.delete(first.value);
    }
    this.seenCalls.add(callID);
  }

  // ---- hooks ----

  /** @returns {Hooks} */
  hooks() {
    const rec = this.recorder;
    const commandHandlers = userCommands(this);
    /** @type {Hooks} */
    const hooks = {
      event: async ({ event }) => {
        try {
          rec?.write("event", event);
          this.onEvent(event);
        } catch (error) {
          this.internalError(error, "event");
        }
      },
      config: async (config) => {
        try {
          // `/grade`, `/bug`, `/retro` and `/recommend` must be commands OpenCode knows, or it
          // answers "Command not found" before any hook runs. The config object passed here is the one the command
          // list is built from, so adding them here is enough (no command file needed). A command
          // of the same name in the user's own config is kept, and stays theirs.
          this.configs.onConfig(config);
          const commands = /** @type {Record<string, any>} */ (config.command ??= {});
          this.userCommands.clear();
          for (const [name, command] of Object.entries(COMMANDS)) {
            if (commands[name] !== undefined) this.userCommands.add(name);
            else commands[name] = { ...command };
          }
        } catch (error) {
          this.internalError(error, "config");
        }
      },
      "chat.message": async (input, output) => {
        try {
          rec?.write("chat.message", input, output);
          const msg = /** @type {any} */ (output?.message);
          this.setAgent(
            input.sessionID,
            input.agent ?? msg?.agent,
            input.model?.providerID ?? msg?.model?.providerID,
            input.model?.modelID ?? msg?.model?.modelID,
          );
        } catch (error) {
          this.internalError(error, "chat.message");
        }
      },
      "chat.params": async (input, output) => {
        try {
          // Not the provider: its options may hold an API key.
          rec?.write("chat.params", { sessionID: input.sessionID, agent: input.agent, model: input.model?.id }, output);
          this.configs.onChatParams(input, output);
        } catch (error) {
          this.internalError(error, "chat.params");
        }
      },
      "experimental.chat.system.transform": async (input, output) => {
        try {
          rec?.write("experimental.chat.system.transform", { sessionID: input.sessionID }, { parts: output.system.length });
          this.configs.onSystem(input, output);
        } catch (error) {
          this.internalError(error, "experimental.chat.system.transform");
        }
      },
      "tool.definition": async (input) => {
        try {
          this.configs.onTool(input?.toolID);
        } catch (error) {
          this.internalError(error, "tool.definition");
        }
      },
      "tool.execute.before": async (input, output) => {
        rec?.write("tool.execute.before", input, output);
        const agentId = this.sessions.get(input.sessionID)?.agent?.id;
        if (agentId === undefined) return;
        const known = this.agents.get(agentId);
        if (!known?.halted || ALLOWED_WHEN_HALTED.has(input.tool)) return;
        // Halted as far as we know: ask the bridge once more (it re-reads the database), so a
        // reinstatement from the CLI (`agent-tracker reinstate`) lets this call run at once.
        const state = await this.freshStatus(agentId, known);
        if (!state.halted) return;
        this.remember(input.callID);
        throw new Error(haltedMessage(agentId, input.tool, state));
      },
      "tool.execute.after": async (input, output) => {
        try {
          rec?.write("tool.execute.after", input, output);
          const tool = input.tool;
          if (TRACKER_TOOLS.has(tool)) return;
          const sessionID = input.sessionID;
          let s = this.sessions.get(sessionID);
          if (!s) s = this.session(sessionID);
          this.remember(input.callID);
          /** @type {Record<string, unknown>} */
          const params = {
            sessionID,
            callID: input.callID,
            tool,
            success: toolSucceeded(tool, output),
            args: boundArgs(input.args, this.options.excerptHalf),
            output: excerpt(output?.output, this.options.excerptHalf),
          };
          if (s.agent) params.agentId = s.agent.id;
          if (typeof output?.title === "string" && output.title) params.title = output.title;
          this.bridge.notify("tool.executed", params);
        } catch (error) {
          this.internalError(error, "tool.execute.after");
        }
      },
      "command.execute.before": async (input, output) => {
        rec?.write("command.execute.before", input, output);
        if (this.userCommands.has(input.command)) return;
        // Throwing is the only way a command hook can stop OpenCode from prompting the model.
        // The TUI ignores the failed request; our toast tells the user what happened.
        const handle = commandHandlers[input.command];
        if (handle) throw new Error(await handle(input.sessionID, input.arguments));
      },
      tool: trackerTools(this),
      dispose: async () => {
        try {
          rec?.write("dispose", {});
          await this.bridge.dispose();
        } catch (error) {
          this.internalError(error, "dispose");
        } finally {
          await this.recorder?.close();
        }
      },
    };
    return hooks;
  }

  /**
   * The bridge's `recommend` for a project folder: the answer as `agent-tracker recommend` prints it;
   * with `explore`, the setup to run the next session with (`agent-tracker recommend --explore`).
   * @param {string} directory
   * @param {{ explore?: boolean }} [options]
   * @returns {Promise<string>}
   */
  async recommendation(directory, options = {}) {
    const r = await this.bridge.request("recommend", { directory }, 30_000);
    const answer = options.explore ? r?.explore ?? r : r;
    return typeof answer?.text === "string" && answer.text ? answer.text.trimEnd() : JSON.stringify(r, null, 2);
  }

  /**
   * The agent's status as the bridge sees it now, or what we knew if it cannot say in time.
   * @param {string} agentId
   * @param {AgentStatus} known
   * @returns {Promise<AgentStatus>}
   */
  async freshStatus(agentId, known) {
    try {
      const status = await this.bridge.request("agent.status", { agentId }, HALT_CHECK_MS);
      if (!status || status.agentId !== agentId) return known;
      const next = { ...known, ...status, halted: status.halted === true };
      this.agents.set(agentId, next);
      return next;
    } catch {
      return known; // the bridge is down or slow: block on what we know
    }
  }
}

/**
 * @param {string} sessionID
 * @param {SessionInfo} s
 * @param {string} fallbackDirectory
 */
function sessionCreatedParams(sessionID, s, fallbackDirectory) {
  /** @type {Record<string, unknown>} */
  const params = { sessionID, directory: s.directory ?? fallbackDirectory };
  if (s.agent) params.agent = s.agent;
  if (s.title) params.title = s.title;
  if (s.parentID) params.parentID = s.parentID;
  return params;
}

/** @param {string} agentId @param {string} tool @param {AgentStatus} state */
export function haltedMessage(agentId, tool, state) {
  const why = typeof state.haltReason === "string" && state.haltReason
    ? ` (${state.haltReason})`
    : typeof state.skillPoints === "number" ? ` (skill points ${state.skillPoints} ≤ 0)` : " (skill points ≤ 0)";
  return `agent-tracker: agent "${agentId}" is halted${why}, so the "${tool}" tool is blocked. ` +
    `Stop and ask the user to review your work: the user can reinstate the agent with \`agent-tracker reinstate ${agentId}\` ` +
    "(or grade your work with /grade). tracker_status shows your sheet; tracker_retro records what you would do differently.";
}

function ignore() {}

/**
 * The plugin: starts the bridge once and returns the hooks.
 * @param {PluginInput} input
 * @param {Record<string, unknown>} [options]
 * @param {{env?: Record<string, string | undefined>, loadRpc?: () => Promise<any>}} [deps]
 * @returns {Promise<Hooks>}
 */
export async function createAgentTracker(input, options, deps) {
  const tracker = new Tracker(input, options, deps);
  tracker.recorder?.write("init", {
    directory: input.directory,
    worktree: input.worktree,
    project: input.project,
    serverUrl: String(input.serverUrl ?? ""),
  }, { options });
  if (!tracker.options.enabled) {
    tracker.log("info", "agent-tracker: disabled by its options");
    return {};
  }
  const hooks = tracker.hooks();
  trackers.set(hooks, tracker);
  tracker.bridge.start();
  return hooks;
}
