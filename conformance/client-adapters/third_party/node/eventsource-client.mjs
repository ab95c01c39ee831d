// SPDX-License-Identifier: GPL-3.0-or-later
// The `eventsource-client` npm package (createEventSource, reconnects by itself).
import { DESCRIBE, URL_ARG, emit, event, hello, keepAlive } from "./protocol.mjs";

hello("eventsource-client", ["reconnect"]);
if (!DESCRIBE) {
  const { createEventSource } = await import("eventsource-client");
  createEventSource({
    url: URL_ARG,
    onConnect: () => emit("open"),
    onDisconnect: () => emit("error", { message: "disconnected" }),
    onMessage: (msg) => event(msg.event, msg.data, msg.id),
  });
  keepAlive();
}
