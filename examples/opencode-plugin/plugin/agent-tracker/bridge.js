// The connection to the bridge process: spawn `agent-tracker serve`, talk JSON-RPC 2.0 with
// LSP-style Content-Length framing over its stdio (vscode-jsonrpc), restart it with backoff.
//
// Rules: nothing here may block or break OpenCode. Notifications are never awaited; while the
// bridge is starting or down they wait in a bounded queue and go out in order once it is up.
// An outage is announced once (one log line and one toast) however many restarts it takes.

import { spawn } from "node:child_process";

/** @typedef {typeof import("vscode-jsonrpc/node")} Rpc */
/** @typedef {import("vscode-jsonrpc/node").MessageConnection} MessageConnection */
/** @typedef {import("node:child_process").ChildProcess} ChildProcess */
/** @typedef {"idle" | "starting" | "ready" | "down" | "failed" | "disposed"} BridgeState */

/** JSON-RPC "invalid params": the bridge rejects our configuration; restarting cannot help. */
export const INVALID_PARAMS = -32602;

/** @type {Promise<Rpc> | undefined} */
let rpcModule;

/**
 * vscode-jsonrpc, imported lazily so a missing dependency disables tracking with a clear
 * message instead of failing the plugin's load (and OpenCode's start) altogether.
 * @returns {Promise<Rpc>}
 */
export function loadRpc() {
  rpcModule ??= import("vscode-jsonrpc/node").catch((error) => {
    rpcModule = undefined; // let a later restart retry once OpenCode has installed it
    throw error;
  });
  return rpcModule;
}

/**
 * @typedef {object} BridgeClientOptions
 * @property {string[]} command
 * @property {string} cwd
 * @property {Record<string, string>} [env]
 * @property {() => Record<string, unknown>} initializeParams
 * @property {(level: "debug" | "info" | "warn" | "error", message: string, extra?: Record<string, unknown>) => void} log
 * @property {(message: string, variant: "info" | "success" | "warning" | "error") => void} toast
 * @property {(method: string, params: any) => void} onNotification
 * @property {(result: any, restarted: boolean) => void} onReady called before queued events go out
 * @property {number} restartInitialMs
 * @property {number} restartMaxMs
 * @property {number} initializeTimeoutMs
 * @property {number} requestTimeoutMs
 * @property {number} maxQueue
 * @property {() => Promise<Rpc>} [loadRpc]
 */

export class BridgeClient {
  /** @param {BridgeClientOptions} options */
  constructor(options) {
    this.options = options;
    /** @type {BridgeState} */
    this.state = "idle";
    /** @type {ChildProcess | undefined} */
    this.child = undefined;
    /** @type {MessageConnection | undefined} */
    this.connection = undefined;
    /** @type {Array<[string, unknown]>} events waiting for the bridge, in order */
    this.queue = [];
    this.dropped = 0;
    this.attempts = 0;
    this.starts = 0;
    /** @type {string | undefined} why the bridge is not available (while down or failed) */
    this.reason = undefined;
    this.announced = false;
    /** @type {NodeJS.Timeout | undefined} */
    this.timer = undefined;
    /** @type {any} the last `initialize` result */
    this.serverInfo = undefined;
    this.stderrTail = "";
    /** @type {Promise<void> | undefined} */
    this.disposing = undefined;
    this.generation = 0;
  }

  get ready() {
    return this.state === "ready";
  }

  /** Starts the bridge (once; later starts are restarts driven by the client itself). */
  start() {
    if (this.state !== "idle") return;
    void this.#spawn();
  }

  /**
   * Sends a notification, or queues it while the bridge is not up. Never throws, never waits.
   * @param {string} method
   * @param {unknown} params
   */
  notify(method, params) {
    const connection = this.connection;
    if (this.state === "ready" && connection) {
      connection.sendNotification(method, params).catch(ignore);
      return;
    }
    if (this.state === "failed" || this.state === "disposed") return;
    if (this.queue.length >= this.options.maxQueue) {
      this.queue.shift();
      this.dropped++;
    }
    this.queue.push([method, params]);
  }

  /**
   * A request to the bridge; rejects at once when the bridge is not up.
   * @param {string} method
   * @param {unknown} params
   * @param {number} [timeoutMs]
   * @returns {Promise<any>}
   */
  request(method, params, timeoutMs = this.options.requestTimeoutMs) {
    const connection = this.connection;
    if (this.state !== "ready" || !connection) {
      return Promise.reject(new Error(`the agent-tracker bridge is not available${this.reason ? `: ${this.reason}` : " yet"}`));
    }
    return withTimeout(connection.sendRequest(method, params), timeoutMs, `${method} timed out after ${timeoutMs} ms`);
  }

  /**
   * `shutdown` (the bridge flushes), then `exit`; kills the process if it does not go.
   * @param {number} [timeoutMs]
   * @returns {Promise<any>} the flush result of `shutdown`, or undefined
   */
  dispose(timeoutMs = 5000) {
    if (this.disposing) return this.disposing;
    const wasReady = this.state === "ready";
    this.state = "disposed";
    this.queue.length = 0;
    if (this.timer) clearTimeout(this.timer);
    const child = this.child;
    const connection = this.connection;
    /** @type {any} */
    let flushed;
    this.disposing = (async () => {
      if (wasReady && connection) {
        try {
          flushed = await withTimeout(connection.sendRequest("shutdown"), timeoutMs, "shutdown timed out");
          await connection.sendNotification("exit").catch(ignore);
        } catch (error) {
          this.options.log("warn", `agent-tracker: bridge shutdown failed: ${message(error)}`);
        }
      }
      if (child) await stopProcess(child, wasReady ? 3000 : 0);
      connection?.dispose();
      this.connection = undefined;
      this.child = undefined;
    })();
    return this.disposing.then(() => flushed);
  }

  async #spawn() {
    if (this.state === "disposed" || this.state === "failed") return;
    this.state = "starting";
    this.starts++;
    const generation = ++this.generation;
    /** @type {Rpc} */
    let rpc;
    try {
      rpc = await (this.options.loadRpc ?? loadRpc)();
    } catch (error) {
      this.#down(generation, `the npm package vscode-jsonrpc is not installed next to the plugin (${message(error)})`);
      return;
    }
    if (generation !== this.generation || this.state !== "starting") return;
    const [file, ...args] = this.options.command;
    /** @type {ChildProcess} */
    let child;
    try {
      child = spawn(file, args, {
        cwd: this.options.cwd,
        env: { ...process.env, ...this.options.env },
        stdio: ["pipe", "pipe", "pipe"],
        windowsHide: true,
      });
    } catch (error) {
      this.#down(generation, `cannot start ${JSON.stringify(this.options.command)}: ${message(error)}`);
      return;
    }
    this.child = child;
    this.stderrTail = "";
    // The bridge must never keep OpenCode alive: unref the process and its pipes.
    child.unref();
    for (const stream of [child.stdin, child.stdout, child.stderr]) {
      /** @type {any} */ (stream)?.unref?.();
      stream?.on("error", ignore); // EPIPE after a crash is reported through "exit"
    }
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (chunk) => {
      this.stderrTail = (this.stderrTail + chunk).slice(-4000);
    });
    child.on("error", (error) => {
      const code = /** @type {NodeJS.ErrnoException} */ (error).code;
      const what = code === "ENOENT"
        ? `the bridge command ${JSON.stringify(file)} was not found (install agent-tracker, or set the plugin option bridgeCommand)`
        : `cannot start ${JSON.stringify(this.options.command)}: ${message(error)}`;
      this.#down(generation, what);
    });
    child.on("exit", (code, signal) => {
      if (this.state === "disposed") return;
      const tail = this.stderrTail.trim().split("\n").slice(-3).join(" | ");
      this.#down(generation, `the bridge exited (${signal ? `signal ${signal}` : `code ${code}`})${tail ? `: ${tail}` : ""}`);
    });
    if (!child.stdout || !child.stdin) {
      this.#down(generation, "the bridge has no stdio pipes");
      return;
    }
    const connection = rpc.createMessageConnection(
      new rpc.StreamMessageReader(child.stdout),
      new rpc.StreamMessageWriter(child.stdin),
    );
    this.connection = connection;
    connection.onNotification((method, params) => {
      try {
        this.options.onNotification(method, params);
      } catch (error) {
        this.options.log("warn", `agent-tracker: handling ${method} failed: ${message(error)}`);
      }
    });
    connection.onClose(() => {
      if (this.state !== "disposed") this.#down(generation, "the connection to the bridge closed");
    });
    connection.listen();
    try {
      const result = await withTimeout(
        connection.sendRequest("initialize", this.options.initializeParams()),
        this.options.initializeTimeoutMs,
        `the bridge did not answer initialize within ${this.options.initializeTimeoutMs} ms`,
        false,
      );
      if (generation !== this.generation || this.state !== "starting") return;
      this.#ready(result);
    } catch (error) {
      if (generation !== this.generation || this.state !== "starting") return;
      const code = /** @type {any} */ (error)?.code;
      if (code === INVALID_PARAMS) {
        this.#fail(`the bridge rejected the plugin options: ${message(error)}`);
      } else {
        this.#down(generation, `initialize failed: ${message(error)}`);
      }
    }
  }

  /** @param {any} result */
  #ready(result) {
    const restarted = this.starts > 1;
    this.state = "ready";
    this.serverInfo = result;
    this.attempts = 0;
    if (this.announced) {
      this.options.log("info", "agent-tracker: the bridge is back; tracking resumed", { restarts: this.starts - 1 });
    }
    this.announced = false;
    this.reason = undefined;
    try {
      this.options.onReady(result, restarted);
    } catch (error) {
      this.options.log("warn", `agent-tracker: onReady failed: ${message(error)}`);
    }
    const queued = this.queue.splice(0);
    const connection = this.connection;
    if (connection) for (const [method, params] of queued) connection.sendNotification(method, params).catch(ignore);
    if (this.dropped > 0) {
      this.options.log("warn", `agent-tracker: ${this.dropped} events were dropped while the bridge was unavailable`);
      this.dropped = 0;
    }
  }

  /**
   * The bridge is unavailable: say so once per outage, clean up, and restart with backoff.
   * @param {number} generation
   * @param {string} reason
   */
  #down(generation, reason) {
    if (generation !== this.generation) return; // a stale process of an earlier start
    if (this.state === "disposed" || this.state === "failed" || this.state === "down") return;
    this.generation++;
    this.state = "down";
    this.reason = reason;
    this.#teardown();
    const delay = Math.min(this.options.restartMaxMs, this.options.restartInitialMs * 2 ** this.attempts);
    this.attempts++;
    if (!this.announced) {
      this.announced = true;
      this.options.log("error", `agent-tracker: tracking is disabled: ${reason}. OpenCode keeps working; the plugin retries in the background.`, {
        command: this.options.command,
      });
      this.options.toast(`Agent tracking is disabled: ${reason}`, "warning");
    } else {
      this.options.log("debug", `agent-tracker: bridge still unavailable: ${reason}`, { retryInMs: delay });
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.#spawn();
    }, delay);
    this.timer.unref?.();
  }

  /** @param {string} reason */
  #fail(reason) {
    this.generation++;
    this.state = "failed";
    this.reason = reason;
    this.queue.length = 0;
    this.#teardown();
    this.options.log("error", `agent-tracker: tracking is disabled: ${reason}`);
    this.options.toast(`Agent tracking is disabled: ${reason}`, "error");
  }

  #teardown() {
    const connection = this.connection;
    const child = this.child;
    this.connection = undefined;
    this.child = undefined;
    try {
      connection?.dispose();
    } catch {
      // already closed
    }
    if (child && child.exitCode === null && child.signalCode === null) void stopProcess(child, 0);
  }
}

/**
 * @param {ChildProcess} child
 * @param {number} graceMs
 * @returns {Promise<void>}
 */
function stopProcess(child, graceMs) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    /** @type {NodeJS.Timeout | undefined} */
    let kill;
    const term = setTimeout(() => {
      child.kill("SIGTERM");
      kill = setTimeout(() => child.kill("SIGKILL"), 2000);
    }, graceMs);
    child.once("exit", () => {
      clearTimeout(term);
      if (kill) clearTimeout(kill);
      resolve();
    });
    if (child.exitCode !== null || child.signalCode !== null) resolve();
  });
}

/**
 * A promise that rejects after `ms`. The timer keeps the process alive (someone is waiting
 * for the answer: a tool, `/grade`, dispose) unless `keepAlive` is false.
 * @template T
 * @param {Promise<T>} promise
 * @param {number} ms
 * @param {string} what
 * @param {boolean} [keepAlive]
 * @returns {Promise<T>}
 */
function withTimeout(promise, ms, what, keepAlive = true) {
  /** @type {NodeJS.Timeout | undefined} */
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(what)), ms);
    if (!keepAlive) timer.unref?.();
  });
  return /** @type {Promise<T>} */ (Promise.race([promise, timeout])).finally(() => clearTimeout(timer));
}

/** @param {unknown} error */
export function message(error) {
  return error instanceof Error ? error.message : String(error);
}

function ignore() {}
