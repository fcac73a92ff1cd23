// What the model was really given: an agent's whole definition, sent to the bridge as
// `agent.configured` once per change (the bridge hashes it into a configuration version).
//
// Sources (types read from @opencode-ai/plugin and @opencode-ai/sdk 1.18.33):
//  - `chat.params({sessionID, agent, model, provider, message}, {temperature, topP, topK,
//    maxOutputTokens, options})`: runs before each model call with the parameters OpenCode will
//    send. OpenCode drops a configured temperature the model does not declare, so `sent` is what
//    the model really got, beside the agent's configured values.
//  - `client.app.agents()`: every resolved agent, built-ins included: `{name, description?, mode,
//    hidden?, topP?, temperature?, permission (rules), prompt?, options, steps?}`. Read once per
//    process (OpenCode loads its config at start), again after a failure.
//  - the `config` hook: the user's own `agent.<name>` blocks (their `permission` in the form they
//    wrote it, what `recommend --write` hands back), `instructions` (file names: each hashed) and
//    `mcp` (server names).
//  - `tool.definition({toolID}, ...)`: the tools OpenCode offers the model.
//  - `experimental.chat.system.transform({sessionID, model}, {system})`: the system prompt of the
//    call (OpenCode runs it before chat.params), hashed (`system: {sha256, length}`; the text is
//    not sent) without what changes by itself: the <env> block (working directory, today's date)
//    and the line naming the model (the model is the setup's own dimension).
// Nothing here blocks a hook: the definition is put together after the hook returned.

import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";

/** Instructions files OpenCode reads in a project without being told (beside `instructions`). */
const PROJECT_RULES = ["AGENTS.md", "CLAUDE.md"];
const SENT_LIMIT = 1024;

export class ConfigCapture {
  /**
   * @param {{client: any, directory: string, notify: (method: string, params: any) => void,
   *          internalError: (error: unknown, where: string) => void}} deps
   */
  constructor(deps) {
    this.deps = deps;
    /** @type {Promise<any[]> | undefined} */
    this.agentsList = undefined;
    /** @type {Record<string, any>} the user's own agent blocks, by name */
    this.userAgents = {};
    /** @type {string[]} */
    this.instructionPaths = [];
    /** @type {string[]} */
    this.mcp = [];
    /** @type {Set<string>} */
    this.tools = new Set();
    /** @type {Map<string, {sha256: string, length: number}>} sessionID -> its latest system prompt */
    this.systems = new Map();
    /** @type {Map<string, string>} `${sessionID}\0${agent}` -> the definition last sent (JSON) */
    this.sent = new Map();
  }

  /** The `config` hook: what the user configured. @param {any} config */
  onConfig(config) {
    const agents = config?.agent;
    this.userAgents = agents && typeof agents === "object" ? { ...agents } : {};
    this.instructionPaths = Array.isArray(config?.instructions)
      ? config.instructions.filter((/** @type {unknown} */ p) => typeof p === "string") : [];
    const mcp = config?.mcp && typeof config.mcp === "object" ? config.mcp : {};
    this.mcp = Object.keys(mcp).filter((name) => mcp[name]?.enabled !== false).sort();
  }

  /** `tool.definition`. @param {unknown} toolID */
  onTool(toolID) {
    if (typeof toolID === "string" && toolID) this.tools.add(toolID);
  }

  /** `experimental.chat.system.transform`. @param {any} input @param {any} output */
  onSystem(input, output) {
    const sessionID = input?.sessionID;
    if (typeof sessionID !== "string" || !sessionID || !Array.isArray(output?.system)) return;
    const text = stableSystem(output.system.filter((/** @type {unknown} */ part) => typeof part === "string").join("\n"));
    if (this.systems.size >= SENT_LIMIT && !this.systems.has(sessionID)) {
      const first = this.systems.keys().next();
      if (!first.done) this.systems.delete(first.value);
    }
    this.systems.set(sessionID, { sha256: createHash("sha256").update(text).digest("hex"), length: text.length });
  }

  /**
   * `chat.params`: puts the definition together (after the hook returned) and sends it if it
   * changed for this session and agent.
   * @param {any} input @param {any} output
   */
  onChatParams(input, output) {
    const sessionID = input?.sessionID;
    const agent = typeof input?.agent === "string" ? input.agent : input?.agent?.name;
    if (typeof sessionID !== "string" || !sessionID || typeof agent !== "string" || !agent) return;
    const sent = compact({
      temperature: output?.temperature, topP: output?.topP, topK: output?.topK,
      maxOutputTokens: output?.maxOutputTokens, options: withoutSession(plain(output?.options), sessionID),
    });
    const system = this.systems.get(sessionID);
    this.definition(agent, sent, system).then(
      (definition) => {
        if (definition) this.send(sessionID, agent, definition);
      },
      (error) => this.deps.internalError(error, "chat.params"),
    );
  }

  /**
   * @param {string} sessionID @param {string} agent @param {Record<string, unknown>} definition
   */
  send(sessionID, agent, definition) {
    const key = `${sessionID}\0${agent}`;
    const text = JSON.stringify(definition);
    if (this.sent.get(key) === text) return;
    if (this.sent.size >= SENT_LIMIT) {
      const first = this.sent.keys().next();
      if (!first.done) this.sent.delete(first.value);
    }
    this.sent.set(key, text);
    this.deps.notify("agent.configured", { sessionID, agentId: agent, definition });
  }

  /**
   * The agent's whole definition, or undefined for an agent OpenCode hides (title, summary...).
   * @param {string} name @param {Record<string, unknown>} sent
   * @param {{sha256: string, length: number}} [system]
   * @returns {Promise<Record<string, unknown> | undefined>}
   */
  async definition(name, sent, system) {
    const agents = await this.agents();
    const agent = agents.find((a) => a?.name === name) ?? {};
    if (agent.hidden === true) return undefined;
    const user = this.userAgents[name];
    return compact({
      name,
      mode: agent.mode,
      description: agent.description,
      prompt: agent.prompt,
      temperature: agent.temperature,
      topP: agent.topP,
      steps: agent.steps ?? agent.maxSteps,
      options: plain(agent.options),
      permission: plain(agent.permission),
      configuredPermission: plain(user?.permission),
      tools: [...this.tools].sort(),
      sent,
      system,
      instructions: await this.instructions(),
      mcp: this.mcp,
    });
  }

  /** @returns {Promise<any[]>} */
  agents() {
    this.agentsList ??= Promise.resolve()
      .then(() => this.deps.client?.app?.agents?.())
      .then((result) => {
        const list = Array.isArray(result) ? result : result?.data;
        if (!Array.isArray(list)) throw new Error("client.app.agents() gave no list");
        return list;
      })
      .catch((error) => {
        this.agentsList = undefined; // asked again next time
        this.deps.internalError(error, "client.app.agents");
        return [];
      });
    return this.agentsList;
  }

  /** The instructions files with a hash of their contents (null: not readable). */
  async instructions() {
    const names = [...new Set([...this.instructionPaths, ...PROJECT_RULES])];
    /** @type {Array<{path: string, sha256: string | null}>} */
    const found = [];
    for (const name of names) {
      const file = path.isAbsolute(name) ? name : path.join(this.deps.directory, name);
      try {
        const data = await fs.readFile(file);
        found.push({ path: name, sha256: createHash("sha256").update(data).digest("hex") });
      } catch {
        if (!PROJECT_RULES.includes(name)) found.push({ path: name, sha256: null });
      }
    }
    return found;
  }
}

/**
 * The system prompt without what changes on its own between calls of one configuration.
 * @param {string} text
 */
export function stableSystem(text) {
  return text
    .replace(/<env>[\s\S]*?<\/env>/g, "<env/>")
    .replace(/^You are powered by the model named .*$/gm, "")
    .trim();
}

/**
 * The object without undefined fields.
 * @param {Record<string, unknown>} object
 * @returns {Record<string, unknown>}
 */
function compact(object) {
  /** @type {Record<string, unknown>} */
  const out = {};
  for (const [key, value] of Object.entries(object)) if (value !== undefined) out[key] = value;
  return out;
}

/**
 * Provider options without the values that name the session (OpenCode sets e.g. a prompt cache
 * key to the session id): they would make every session a version of its own.
 * @param {any} options @param {string} sessionID
 */
function withoutSession(options, sessionID) {
  if (!options || typeof options !== "object" || Array.isArray(options)) return options;
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== sessionID));
}

/**
 * A JSON copy (functions, undefined and cycles dropped), or undefined.
 * @param {unknown} value
 */
function plain(value) {
  if (value === undefined || value === null) return undefined;
  try {
    return JSON.parse(JSON.stringify(value));
  } catch {
    return undefined;
  }
}
