// SPDX-License-Identifier: GPL-3.0-or-later
// The /v1/ui/ live page: collections, recent documents, and inserts appended live.
// `?api=<server root>` points the page at another server (CORS must allow this origin);
// `?collection=<name>` preselects a collection.
import { DualStoreClient, apiRoot } from "./dualstore-sse-client.js";

const query = new URLSearchParams(location.search);
const api = query.get("api") || "";
const $ = (id) => document.getElementById(id);
const shown = new Set();
const ui = { stream: null, collection: null, inserts: [], errors: [] };
window.dualstoreUi = ui; // for people poking around in the console, and for the browser test

// The token is remembered per API root, so a link with another `?api=` never receives it.
const tokenKey = `dualstore-token:${apiRoot(api)}`;

function token() {
  return sessionStorage.getItem(tokenKey) || undefined;
}

function client() {
  return new DualStoreClient(api, { token: token() });
}

function showError(error) {
  ui.errors.push(String(error));
  $("error").hidden = false;
  $("error").textContent = error.problem
    ? `${error.status} ${error.problem.title || error.type}: ${error.problem.detail || ""}`
    : `Cannot reach the server: ${error.message || error}`;
}

function setStatus(state) {
  $("status").textContent = state;
  $("status").className = `status ${state}`;
}

function render(doc, { live, eventId } = {}) {
  if (shown.has(doc.id)) return false;
  shown.add(doc.id);
  const item = document.createElement("li");
  item.className = live ? "doc live" : "doc";
  item.dataset.id = doc.id;
  if (eventId) item.dataset.eventId = eventId;
  const meta = document.createElement("div");
  meta.className = "meta";
  const when = document.createElement("time");
  when.dateTime = doc.timestamp;
  when.textContent = doc.timestamp;
  const id = document.createElement("code");
  id.textContent = doc.id;
  meta.append(when, id);
  if (doc.metadata && Object.keys(doc.metadata).length) {
    const extra = document.createElement("code");
    extra.textContent = JSON.stringify(doc.metadata);
    meta.append(extra);
  }
  const text = document.createElement("div");
  text.className = "text";
  text.textContent = doc.text;
  item.append(meta, text);
  if (live) $("docs").prepend(item);
  else $("docs").append(item);
  return true;
}

async function select(collection) {
  if (ui.stream) ui.stream.close();
  ui.collection = collection;
  shown.clear();
  $("docs").replaceChildren();
  $("error").hidden = true;
  $("title").textContent = collection;
  $("results").hidden = true;
  for (const button of document.querySelectorAll("nav button")) {
    button.setAttribute("aria-current", String(button.textContent === collection));
  }
  const c = client();
  let loaded = false;
  const loadRecent = async () => {
    if (loaded) return;
    loaded = true;
    try {
      // Joined the stream first, so anything newer than this page arrives live.
      const page = await c.recent(collection, { limit: 50 });
      for (const doc of page.items) render(doc);
    } catch (error) {
      showError(error);
    }
  };
  ui.stream = c.stream(collection, {
    storage: null, // the page shows recent documents; resume only within this visit
    onOpen: loadRecent,
    onInsert(doc, eventId) {
      ui.inserts.push({ id: doc.id, eventId });
      render(doc, { live: true, eventId });
    },
    onStateChange: setStatus,
  });
}

async function start() {
  let names;
  try {
    names = await client().collections();
  } catch (error) {
    setStatus("error");
    showError(error);
    return;
  }
  $("collections").replaceChildren(
    ...names.map((name) => {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = name;
      button.addEventListener("click", () => select(name));
      item.append(button);
      return item;
    }),
  );
  const wanted = query.get("collection");
  if (names.length) await select(names.includes(wanted) ? wanted : names[0]);
}

$("auth").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(tokenKey, $("token").value);
  start();
});

$("search").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!ui.collection) return;
  try {
    const found = await client().search(ui.collection, $("q").value, { k: 8 });
    $("hits").replaceChildren(
      ...found.items.map((hit) => {
        const item = document.createElement("li");
        const score = document.createElement("span");
        score.className = "score";
        score.textContent = ` (${hit.score.toFixed(3)})`;
        item.append(document.createTextNode(hit.text), score);
        return item;
      }),
    );
    $("results").hidden = false;
  } catch (error) {
    showError(error);
  }
});

$("insert").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!ui.collection) return;
  try {
    await client().insert(ui.collection, $("text").value);
    $("text").value = "";
  } catch (error) {
    showError(error);
  }
});

start();
