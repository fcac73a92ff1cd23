// Feeds a recording of the plugin's hooks (written with AGENT_TRACKER_PLUGIN_RECORD, such as
// test/fixtures/opencode-1.18.33-history.jsonl) into the plugin, as OpenCode would:
//
//   node scripts/replay-recording.mjs RECORDING --offline
//       prints what the plugin sends to the bridge, one JSON line per message: [method, params]
//   node scripts/replay-recording.mjs RECORDING --database PATH [--python PYTHON] [--directory DIR]
//       sends it through the real bridge (python -m bridge serve) into PATH, then disposes the
//       plugin (shutdown + exit) and prints the final flush result as JSON
//
// The recording's sessions keep their recorded directories; --directory is only the folder the
// plugin runs in (the bridge's working directory), default the temp folder. This is the live side
// of tests/test_import_opencode.py: the same sessions imported from OpenCode's database must
// leave the same report.

import os from "node:os";

import { Tracker, createAgentTracker, trackers } from "../plugin/agent-tracker/tracker.js";
import { loadRecording, pluginInput, python, replay, stubClient, waitFor } from "../test/helpers.js";

const args = process.argv.slice(2);
const recording = args[0];
/** @param {string} name */
const option = (name) => {
  const index = args.indexOf(name);
  return index > 0 ? args[index + 1] : undefined;
};
if (!recording || (!args.includes("--offline") && !option("--database"))) {
  console.error("usage: node scripts/replay-recording.mjs RECORDING (--offline | --database PATH [--python PYTHON] [--directory DIR])");
  process.exit(2);
}
const directory = option("--directory") ?? os.tmpdir();
const records = loadRecording(recording, directory).filter((r) => r.hook !== "init");
const { client } = stubClient();

if (args.includes("--offline")) {
  const tracker = new Tracker(pluginInput(directory, client), { bridgeCommand: ["unused"] }, { env: {} });
  tracker.bridge.notify = (method, params) => {
    process.stdout.write(JSON.stringify([method, params]) + "\n");
  };
  tracker.bridge.request = async () => ({});
  await replay(tracker.hooks(), records);
} else {
  const hooks = /** @type {any} */ (await createAgentTracker(pluginInput(directory, client), {
    bridgeCommand: [option("--python") ?? python(), "-m", "bridge", "serve"],
    databasePath: option("--database"),
    toasts: false,
  }));
  const tracker = trackers.get(hooks);
  if (!tracker) throw new Error("the plugin did not start");
  await waitFor(() => tracker.bridge.ready, 30000, "the bridge");
  await replay(hooks, records);
  const flushed = await tracker.bridge.dispose();
  process.stdout.write(JSON.stringify(flushed) + "\n");
}
