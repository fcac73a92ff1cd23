// The user's slash commands, answered by the plugin itself (the model is not called): /grade,
// /bug, /retro and /recommend. The `config` hook declares them (OpenCode answers "Command not
// found" for a command it does not know); `command.execute.before` runs the handler and throws
// its text, the only way a command hook can keep OpenCode from prompting the model.

import { message } from "./bridge.js";
import { VALID_GRADES_TEXT, parseGradeArguments } from "./util.js";

/** @typedef {import("./tracker.js").Tracker} Tracker */

export const GRADE_COMMAND = "grade";
export const BUG_COMMAND = "bug";
export const RETRO_COMMAND = "retro";
export const RECOMMEND_COMMAND = "recommend";
/** Their declarations, as the `config` hook adds them to OpenCode's `command` config. */
export const COMMANDS = /** @type {const} */ ({
  [GRADE_COMMAND]: {
    description: `Grade the agent's last commit: /grade <${VALID_GRADES_TEXT}> [reason] (agent-tracker; the model is not called)`,
    template: "The user graded your last commit: $ARGUMENTS",
  },
  [BUG_COMMAND]: {
    description: "Report a bug in the agent's work: /bug [what is wrong] (agent-tracker: its skill points drop by 1; at 0 its tools are blocked; the model is not called)",
    template: "The user reported a bug in your work: $ARGUMENTS",
  },
  [RETRO_COMMAND]: {
    description: "A retrospective of the agent's last commit: /retro <what went well, what to improve> (agent-tracker; the model is not called)",
    template: "The user's retrospective of your last commit: $ARGUMENTS",
  },
  [RECOMMEND_COMMAND]: {
    description: "Which agent and model to configure for this project, from all your projects' records, and how sure that is; /recommend explore: the setup to try next, to learn which is best (agent-tracker; the model is not called)",
    template: "Which agent and model should this project use? (answered by agent-tracker)",
  },
});

/**
 * The handlers by command name: each takes the session and the command's arguments and returns
 * what to tell the user (also shown as a toast).
 * @param {Tracker} tracker
 * @returns {Record<string, (sessionID: string, args: string) => Promise<string>>}
 */
export function userCommands(tracker) {
  /**
   * `/recommend [explore]`: the answer for this project, shown as a toast (the model is not
   * called); `/recommend explore`: the setup to run the next session with (Thompson sampling).
   * @param {string} _sessionID
   * @param {string} args
   * @returns {Promise<string>} what to tell the user
   */
  async function recommend(_sessionID, args) {
    const word = (args ?? "").trim().toLowerCase();
    if (word && word !== "explore") {
      const text = `/recommend takes nothing or "explore" (the setup to try next); got "${word.slice(0, 40)}".`;
      tracker.toast(text, "error");
      return `agent-tracker: ${text}`;
    }
    try {
      const text = await tracker.recommendation(tracker.directory, { explore: word === "explore" });
      // The toast shows the sentences; the config snippet is in the returned text.
      tracker.toast(text.split("\n\n")[0], "info");
      return `agent-tracker: ${text}`;
    } catch (error) {
      const text = `/recommend failed: ${message(error)}`;
      tracker.toast(text, "error");
      return `agent-tracker: ${text}`;
    }
  }

  /**
   * `/grade <grade> [reason]`: the user's grade for the session's latest commit.
   * @param {string} sessionID
   * @param {string} args
   * @returns {Promise<string>} what to tell the user (also shown as a toast)
   */
  async function grade(sessionID, args) {
    const parsed = parseGradeArguments(args);
    if ("error" in parsed) {
      tracker.toast(`/grade: ${parsed.error}`, "error");
      return `agent-tracker: ${parsed.error}`;
    }
    const agentId = tracker.sessions.get(sessionID)?.agent?.id;
    try {
      const result = await tracker.bridge.request("grade", {
        sessionID,
        ...(agentId ? { agentId } : {}),
        projectPath: tracker.directory,
        grade: parsed.grade,
        grader: "user",
        ...(parsed.reason ? { reason: parsed.reason } : {}),
      });
      const text = `Grade ${parsed.grade} recorded for ${result?.agentId ?? agentId ?? "the agent"}'s commit ${String(result?.commitHash ?? "").slice(0, 12)}` +
        (typeof result?.communicationScore === "number" ? ` (communication score ${result.communicationScore})` : "");
      tracker.toast(text, "success");
      return `agent-tracker: ${text}. /grade is handled by the plugin; the model is not called.`;
    } catch (error) {
      const text = `/grade failed: ${message(error)}`;
      tracker.toast(text, "error");
      return `agent-tracker: ${text}`;
    }
  }

  /**
   * `/bug [description]`: the user's bug report for the session's agent (SP −1; at 0 it is halted).
   * @param {string} sessionID
   * @param {string} args
   * @returns {Promise<string>} what to tell the user (also shown as a toast)
   */
  async function bug(sessionID, args) {
    const agentId = tracker.sessions.get(sessionID)?.agent?.id;
    const description = (args ?? "").trim();
    try {
      const status = await tracker.bridge.request("bug.reported", {
        sessionID,
        ...(agentId ? { agentId } : {}),
        ...(description ? { description } : {}),
      });
      if (status && typeof status.agentId === "string") {
        tracker.agents.set(status.agentId, { ...tracker.agents.get(status.agentId), ...status, halted: status.halted === true });
      }
      const who = status?.agentId ?? agentId ?? "the agent";
      const text = `Bug recorded for ${who}: skill points ${status?.skillPoints ?? "?"}` + (status?.halted
        ? `; it is halted: its tools are blocked until \`agent-tracker reinstate ${who}\``
        : "");
      tracker.toast(text, status?.halted ? "error" : "warning");
      return `agent-tracker: ${text}. /bug is handled by the plugin; the model is not called.`;
    } catch (error) {
      const text = `/bug failed: ${message(error)}`;
      tracker.toast(text, "error");
      return `agent-tracker: ${text}`;
    }
  }

  /**
   * `/retro <text>`: the user's retrospective of the session's latest commit.
   * @param {string} sessionID
   * @param {string} args
   * @returns {Promise<string>} what to tell the user (also shown as a toast)
   */
  async function retro(sessionID, args) {
    const summary = (args ?? "").trim();
    if (!summary) {
      const text = "/retro: usage: /retro <what went well, what to improve>";
      tracker.toast(text, "error");
      return `agent-tracker: ${text}`;
    }
    const agentId = tracker.sessions.get(sessionID)?.agent?.id;
    try {
      const result = await tracker.bridge.request("retrospective.recorded", {
        sessionID,
        ...(agentId ? { agentId } : {}),
        author: "user",
        summary,
      });
      const who = result?.agentId ?? agentId ?? "the agent";
      const text = typeof result?.commitHash === "string"
        ? `Retrospective recorded for ${who}'s commit ${result.commitHash.slice(0, 12)}`
        : `Retrospective recorded for ${who} (no commit in this session yet)`;
      tracker.toast(text, "success");
      return `agent-tracker: ${text}. /retro is handled by the plugin; the model is not called.`;
    } catch (error) {
      const text = `/retro failed: ${message(error)}`;
      tracker.toast(text, "error");
      return `agent-tracker: ${text}`;
    }
  }

  return { [GRADE_COMMAND]: grade, [BUG_COMMAND]: bug, [RETRO_COMMAND]: retro, [RECOMMEND_COMMAND]: recommend };
}
