// SPDX-License-Identifier: GPL-3.0-or-later
// @microsoft/fetch-event-source with its defaults (it is written for browsers: its timers are
// window.setTimeout/clearTimeout, so `window` is aliased to Node's global object here, and
// openWhenHidden avoids the page-visibility listener that needs `document`).
import { DESCRIBE, URL_ARG, emit, event, hello, keepAlive } from "./protocol.mjs";

hello("@microsoft/fetch-event-source", ["reconnect"]);
if (!DESCRIBE) {
  globalThis.window = globalThis;
  const { fetchEventSource } = await import("@microsoft/fetch-event-source");
  fetchEventSource(URL_ARG, {
    openWhenHidden: true,
    onopen: async (response) => {
      // the library's default onopen check, reproduced because passing onopen replaces it
      const type = response.headers.get("content-type") || "";
      if (!type.startsWith("text/event-stream")) {
        throw new Error(`Expected content-type to be text/event-stream, Actual: ${type}`);
      }
      emit("open");
    },
    onmessage: (msg) => event(msg.event, msg.data, msg.id),
    onerror: (err) => {
      emit("error", { message: String((err && err.message) || err) });
    },
    onclose: () => emit("error", { message: "onclose" }),
  }).then(
    () => emit("closed", { reason: "promise resolved" }),
    (err) => emit("closed", { reason: String((err && err.message) || err) }),
  );
  keepAlive();
}
