// SPDX-License-Identifier: GPL-3.0-or-later
// The `extended-eventsource` npm package: an EventSource on fetch with retry options.
import { DESCRIBE, URL_ARG, LISTEN, emit, event, hello, keepAlive } from "./protocol.mjs";

hello("extended-eventsource", ["reconnect"]);
if (!DESCRIBE) {
  const { EventSource } = await import("extended-eventsource");
  const es = new EventSource(URL_ARG);
  es.onopen = () => emit("open");
  es.onerror = (e) => {
    emit("error", { message: String((e && (e.message || e.type)) || "error event"), readyState: es.readyState });
    if (es.readyState === 2) emit("closed", { reason: "readyState CLOSED" });
  };
  for (const type of LISTEN) es.addEventListener(type, (e) => event(e.type, e.data, e.lastEventId));
  keepAlive();
}
