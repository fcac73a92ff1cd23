// The plugin's own tools, offered to the model: tracker_grade, tracker_status, tracker_report
// (which agent and model to configure for this project: the bridge's `recommend`), tracker_retro.
// They are meta calls, never reported to the bridge as `tool.executed`; a halted agent may still
// use tracker_status, tracker_report and tracker_retro (tracker.js, ALLOWED_WHEN_HALTED).

import { message } from "./bridge.js";
import { VALID_GRADES_TEXT, nonEmpty, parseGrade } from "./util.js";

/** @typedef {import("@opencode-ai/plugin").ToolDefinition} ToolDefinition */
/** @typedef {import("./tracker.js").Tracker} Tracker */

/**
 * @param {Tracker} tracker
 * @returns {Record<string, ToolDefinition>}
 */
export function trackerTools(tracker) {
  // Plain JSON Schema per argument: OpenCode 1.18 accepts it for plugin tools (it uses zod
  // only when every arg is a zod schema), so the plugin needs no zod of its own.
  const grade = /** @type {any} */ ({
    description: `Record your own grade for the last commit you made in this session: ${VALID_GRADES_TEXT}, with a short honest reason. Your communication score rises when your self-grades match the user's.`,
    args: {
      grade: { type: "integer", enum: [-1, 1, 2, 5], description: `The grade: ${VALID_GRADES_TEXT}` },
      reason: { type: "string", description: "Why this grade, in one or two sentences" },
    },
    /** @param {any} args @param {any} context */
    execute: async (args, context) => {
      const value = parseGrade(args?.grade);
      if (value === undefined) return `Invalid grade ${JSON.stringify(args?.grade)}: use ${VALID_GRADES_TEXT}.`;
      const sessionID = context?.sessionID;
      const agentId = tracker.sessions.get(sessionID)?.agent?.id ?? nonEmpty(context?.agent);
      try {
        const r = await tracker.bridge.request("grade", {
          sessionID,
          ...(agentId ? { agentId } : {}),
          projectPath: nonEmpty(context?.directory) ?? tracker.directory,
          grade: value,
          grader: "agent",
          ...(typeof args?.reason === "string" && args.reason ? { reason: args.reason } : {}),
        });
        return `Recorded your grade ${value} for commit ${r?.commitHash ?? "?"}. Communication score: ${r?.communicationScore ?? "?"}.`;
      } catch (error) {
        return `Could not record the grade: ${message(error)}`;
      }
    },
  });
  const status = /** @type {any} */ ({
    description: "Show your agent sheet from the agent tracker: skill points (SP), experience points (XP), communication score, commits, bugs, and whether you are halted.",
    args: {},
    /** @param {any} _args @param {any} context */
    execute: async (_args, context) => {
      const sessionID = context?.sessionID;
      const agentId = tracker.sessions.get(sessionID)?.agent?.id ?? nonEmpty(context?.agent);
      try {
        const r = await tracker.bridge.request("agent.status", { ...(agentId ? { agentId } : {}), ...(sessionID ? { sessionID } : {}) });
        if (r && typeof r.agentId === "string") tracker.agents.set(r.agentId, { ...r, halted: r.halted === true });
        return formatStatus(r);
      } catch (error) {
        return `The agent tracker is not available: ${message(error)}`;
      }
    },
  });
  const report = /** @type {any} */ ({
    description: "Which agent and model to configure for this project, from the agent tracker's records of all your projects: the best setup for this project's stack (or, without enough data for it, its language, then all projects), with how sure it is (P(best)), what to try next when it is not sure, the evidence, the runner-up and an opencode.json snippet. The same answer as `/recommend` and `agent-tracker recommend`. With explore: true, the setup to run the next session with, to learn which is best (`/recommend explore`).",
    args: {
      explore: { type: "boolean", description: "true: the setup to try next, drawn by its chance of being best (optional)" },
    },
    /** @param {any} args @param {any} context */
    execute: async (args, context) => {
      try {
        return await tracker.recommendation(nonEmpty(context?.directory) ?? tracker.directory,
          { explore: args?.explore === true });
      } catch (error) {
        return `The agent tracker is not available: ${message(error)}`;
      }
    },
  });
  const retro = /** @type {any} */ ({
    description: "Record a short retrospective of the last commit you made in this session (or of the session, before any commit): what you did, what went well, what you would do differently. It is kept with your agent sheet for the user (`agent-tracker status`).",
    args: {
      summary: { type: "string", description: "What you did and how it went, in one or two sentences" },
      wentWell: { type: "array", items: { type: "string" }, description: "What went well (optional)" },
      toImprove: { type: "array", items: { type: "string" }, description: "What to do differently next time (optional)" },
      lessons: { type: "array", items: { type: "string" }, description: "Lessons for this project (optional)" },
    },
    /** @param {any} args @param {any} context */
    execute: async (args, context) => {
      const summary = typeof args?.summary === "string" ? args.summary.trim() : "";
      if (!summary) return "Give a summary: what you did and how it went.";
      const sessionID = context?.sessionID;
      const agentId = tracker.sessions.get(sessionID)?.agent?.id ?? nonEmpty(context?.agent);
      try {
        const r = await tracker.bridge.request("retrospective.recorded", {
          sessionID,
          ...(agentId ? { agentId } : {}),
          author: "agent",
          summary,
          ...stringList("wentWell", args?.wentWell),
          ...stringList("toImprove", args?.toImprove),
          ...stringList("lessons", args?.lessons),
        });
        return typeof r?.commitHash === "string"
          ? `Recorded your retrospective for commit ${r.commitHash}.`
          : "Recorded your retrospective (there is no commit in this session yet).";
      } catch (error) {
        return `Could not record the retrospective: ${message(error)}`;
      }
    },
  });
  return { tracker_grade: grade, tracker_status: status, tracker_report: report, tracker_retro: retro };
}

/**
 * A list argument as the bridge takes it (strings only; an empty or missing list is left out).
 * @param {string} name
 * @param {unknown} value
 * @returns {Record<string, string[]>}
 */
function stringList(name, value) {
  if (!Array.isArray(value)) return {};
  const items = value.filter((item) => typeof item === "string" && item.trim()).map((item) => item.trim());
  return items.length ? { [name]: items } : {};
}

/** @param {any} r */
function formatStatus(r) {
  if (!r || typeof r !== "object") return "No status.";
  const lines = [
    `Agent: ${r.agentId}`,
    `Skill points (SP): ${r.skillPoints}${r.halted ? "  — HALTED (SP ≤ 0): tools are blocked" : ""}`,
    `Experience points (XP): ${r.experiencePoints}`,
    `Communication score: ${r.communicationScore}`,
    `Commits: ${r.totalCommits}   Bugs: ${r.totalBugs}`,
  ];
  if (r.halted && typeof r.haltReason === "string") lines.push(`Halted because: ${r.haltReason}`);
  if (typeof r.pendingChanges === "number" && r.pendingChanges > 0) lines.push(`Pending (not yet flushed): ${r.pendingChanges}`);
  return lines.join("\n");
}
