// Issue 24: the plugin sends an agent's whole definition (client.app.agents(), the config hook,
// tool.definition, what chat.params really sent) as `agent.configured`, once per change; the
// real bridge stores it as a configuration version.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { after, test } from "node:test";

import { cli, loadPlugin, tempWorld, waitFor } from "./helpers.js";

/** @type {Array<() => void>} */
const cleanups = [];
after(() => cleanups.forEach((fn) => fn()));

/**
 * `client.app.agents()` as OpenCode 1.18.33 answers it (sdk v2 `Agent`), for build and a hidden one.
 * @param {string} prompt @param {number} temperature
 * @returns {any[]}
 */
function agents(prompt, temperature) {
  return [
    { name: "build", mode: "primary", native: false, prompt, temperature, options: {}, steps: 12,
      permission: [{ permission: "*", pattern: "*", action: "allow" }, { permission: "edit", pattern: "*", action: "ask" }] },
    { name: "title", mode: "primary", hidden: true, native: true, options: {}, permission: [] },
  ];
}

test("chat.params sends the agent's whole definition once per change", async () => {
  const world = tempWorld("configs");
  cleanups.push(world.cleanup);
  fs.writeFileSync(path.join(world.project, "AGENTS.md"), "Use tabs.\n");
  const { hooks, tracker } = await loadPlugin(world);
  const client = /** @type {any} */ (tracker.client);
  let answer = agents("Be brief.\n", 0.2);
  let asked = 0;
  client.app.agents = async () => {
    asked++;
    return { data: answer };
  };
  await waitFor(() => tracker.bridge.ready, 20000, "the bridge");
  await hooks.config({ agent: { build: { prompt: "Be brief.\n", temperature: 0.2, permission: { edit: "ask" } } },
                       instructions: ["docs/missing.md"], mcp: { github: { type: "remote", url: "x" }, off: { enabled: false } } });
  for (const toolID of ["read", "bash", "edit"]) await hooks["tool.definition"]({ toolID }, { description: "", parameters: {} });
  await hooks.event({ event: { type: "session.created", properties: { info: { id: "ses_1", directory: world.project, title: "t" } } } });
  await hooks["chat.message"]({ sessionID: "ses_1", agent: "build", model: { providerID: "scripted", modelID: "scripted" } },
                              { message: {}, parts: [] });
  const params = (/** @type {string} */ agent, /** @type {number | undefined} */ temperature) => [
    { sessionID: "ses_1", agent, model: { id: "scripted", providerID: "scripted" }, provider: {}, message: {} },
    { temperature, topP: 1, topK: 0, maxOutputTokens: undefined, options: { promptCacheKey: "ses_1", store: false } },
  ];
  // OpenCode's system prompt of the call: hashed without its <env> block and the model's line
  const system = "Base.\nYou are powered by the model named x. The exact model ID is y\n<env>\n  Today's date: Fri\n</env>\nTail";
  await hooks["experimental.chat.system.transform"]({ sessionID: "ses_1", model: {} }, { system: [system] });
  // the model does not declare temperature: OpenCode sends none, which is what the definition says
  await hooks["chat.params"](...params("build", undefined));
  await hooks["chat.params"](...params("build", undefined)); // the next step: nothing changed, nothing sent
  await hooks["chat.params"](...params("title", 0.5)); // a hidden agent: not a setup
  const first = await waitFor(() => tracker.configs.sent.size === 1, 5000, "the first definition")
    .then(() => JSON.parse(/** @type {string} */ (tracker.configs.sent.get("ses_1\0build"))));
  assert.deepEqual(first, {
    name: "build", mode: "primary", prompt: "Be brief.\n", temperature: 0.2, steps: 12, options: {},
    permission: [{ permission: "*", pattern: "*", action: "allow" }, { permission: "edit", pattern: "*", action: "ask" }],
    configuredPermission: { edit: "ask" }, tools: ["bash", "edit", "read"],
    sent: { topP: 1, topK: 0, options: { store: false } },
    system: { sha256: createHash("sha256").update("Base.\n\n<env/>\nTail").digest("hex"), length: 18 },
    instructions: [{ path: "docs/missing.md", sha256: null },
                   { path: "AGENTS.md", sha256: createHash("sha256").update("Use tabs.\n").digest("hex") }],
    mcp: ["github"],
  });
  // a changed prompt (OpenCode's agents of a new process): a new definition for the session
  answer = agents("Be thorough.\n", 0.7);
  tracker.configs.agentsList = undefined;
  await hooks["chat.params"](...params("build", 0.7));
  await waitFor(() => JSON.parse(/** @type {string} */ (tracker.configs.sent.get("ses_1\0build"))).prompt === "Be thorough.\n",
                5000, "the second definition");
  assert.equal(asked, 2);
  await hooks.event({ event: { type: "session.deleted", properties: { info: { id: "ses_1" } } } });
  await tracker.bridge.dispose();

  const { tables } = cli(["export", "--format", "json", "--include-prompts", "--database", world.database], world);
  assert.deepEqual(tables.configs.map((/** @type {any} */ c) => [c.agentId, c.definition.prompt, c.definition.sent.temperature]).sort(),
                   [["build", "Be brief.", undefined], ["build", "Be thorough.", 0.7]]);
  const session = tables.sessions.find((/** @type {any} */ s) => s.sessionID === "ses_1");
  const latest = tables.configs.find((/** @type {any} */ c) => c.definition.prompt === "Be thorough.");
  assert.equal(session.configVersion, latest.version);
  assert.deepEqual(session.configVersions, { build: latest.version });
});
