// agent-tracker for OpenCode: spawns the bridge (`agent-tracker serve`) and forwards OpenCode's
// events to it. OpenCode treats every export of a plugin module as a plugin function, so this
// entry exports exactly one. Configure it in opencode.json:
//   "plugin": [["./plugin/agent-tracker/index.js", {"databasePath": "...", "bridgeCommand": ["agent-tracker", "serve"]}]]

import { createAgentTracker } from "./tracker.js";

/** @type {import("@opencode-ai/plugin").Plugin} */
export const AgentTrackerPlugin = async (input, options) => createAgentTracker(input, options);
