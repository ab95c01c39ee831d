// SPDX-License-Identifier: GPL-3.0-or-later
// The conform-client adapter protocol for Node adapters: JSON lines on stdout.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

export const LISTEN = (process.env.SSE_CONFORM_LISTEN || "message").split(",").filter(Boolean);
export const DESCRIBE = process.env.SSE_CONFORM_DESCRIBE === "1";
export const URL_ARG = process.argv[2] || "";

export function emit(kind, fields = {}) {
  process.stdout.write(JSON.stringify({ kind, ...fields }) + "\n");
}

/** The installed version of a package (read from its package.json next to this file). */
export function versionOf(name) {
  try {
    const require = createRequire(import.meta.url);
    const path = require.resolve(`${name}/package.json`);
    return JSON.parse(readFileSync(path, "utf8")).version;
  } catch {
    try {
      const path = new URL(`./node_modules/${name}/package.json`, import.meta.url);
      return JSON.parse(readFileSync(path, "utf8")).version;
    } catch {
      return "unknown";
    }
  }
}

export function hello(name, features) {
  emit("hello", { client: `${name} (npm)`, version: versionOf(name), profile: "eventsource", features });
}

export function event(type, data, lastEventId) {
  const kind = type || "message";
  if (LISTEN.includes(kind)) emit("event", { type: kind, data, last_event_id: lastEventId ?? null });
}

/** Keep the process alive until the harness ends it (or is gone: never linger orphaned). */
export function keepAlive() {
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) process.exit(0);
  }, 1000);
}
