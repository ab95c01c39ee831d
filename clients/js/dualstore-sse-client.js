// SPDX-License-Identifier: GPL-3.0-or-later
/**
 * DualStore HTTP browser client: one dependency-free ES module, no build step.
 *
 * - `DualStoreStream`: an EventSource wrapper with `onInsert` / `onHeartbeat`, resume
 *   from a stored (localStorage) or given last event id, `access_token` auth, `close()`.
 * - `DualStoreClient`: a thin REST client on `fetch` whose errors are `ProblemError`s
 *   carrying the RFC 9457 problem+json body.
 *
 * Resume: EventSource cannot set headers, so the first connection passes the stored id
 * as `since=<id>`; on its own reconnects the browser sends `Last-Event-ID`, which the
 * server prefers over `since`. If the browser gives up (readyState CLOSED: an error
 * status or a CORS refusal), the wrapper opens a new EventSource with `since=<last id>`
 * after a backoff with jitter.
 */

const DEFAULT_REOPEN_MS = 1000;
const MAX_REOPEN_MS = 30000;
const DEDUPE_WINDOW = 10000;

/** Base64url (no padding) of the UTF-8 JSON of a filter object; strings pass unchanged. */
export function encodeFilter(filter) {
  if (typeof filter === "string") return filter;
  if (filter === null || typeof filter !== "object" || Array.isArray(filter)) {
    throw new TypeError("a filter is a plain object");
  }
  const bytes = new TextEncoder().encode(JSON.stringify(filter));
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Normalise a server URL to its `/v1` root ("" = this page's origin). */
export function apiRoot(baseUrl = "") {
  const base = new URL(baseUrl || "/", globalThis.location ? globalThis.location.href : undefined);
  let path = base.pathname.replace(/\/+$/, "");
  if (!path.endsWith("/v1")) path += "/v1";
  return `${base.origin}${path}`;
}

function segment(value) {
  if (typeof value !== "string" || value === "") {
    throw new TypeError("collection names and ids are non-empty strings");
  }
  return encodeURIComponent(value);
}

function defaultStorage() {
  try {
    return globalThis.localStorage ?? null;
  } catch {
    return null; // e.g. storage disabled for this origin
  }
}

/** An error response: `status`, the `problem` body, and `retryAfter` seconds (or null). */
export class ProblemError extends Error {
  constructor(status, problem, headers) {
    const type = (problem && problem.type) || "about:blank";
    const detail = (problem && (problem.detail || problem.title)) || "";
    super(detail ? `${status} ${type}: ${detail}` : `${status} ${type}`);
    this.name = "ProblemError";
    this.status = status;
    this.problem = problem || { type, status };
    this.type = type;
    const retryAfter = headers && headers.get ? headers.get("Retry-After") : null;
    this.retryAfter = retryAfter !== null && /^\d+$/.test(retryAfter) ? Number(retryAfter) : null;
  }
}

/**
 * A live stream of one collection.
 *
 * options: `token` (sent as `access_token`), `filter` (object or encoded string),
 * `since` (event id or RFC 3339 time; used when no last id is known), `lastEventId`
 * (resume after this id), `storage` (a Storage for the last id; default localStorage,
 * `null` to disable), `storageKey`, `EventSource` (an implementation, e.g. the
 * `eventsource` npm package in Node), `withCredentials`, callbacks `onInsert(doc, id)`,
 * `onHeartbeat(t)`, `onOpen()`, `onError(event)`, `onStateChange(state)`, and
 * `reopenDelayMs` / `maxReopenDelayMs` for the wrapper's own reopen after CLOSED.
 */
export class DualStoreStream {
  constructor(baseUrl, collection, options = {}) {
    this.root = apiRoot(baseUrl);
    this.collection = collection;
    this.options = options;
    this.storage = options.storage === undefined ? defaultStorage() : options.storage;
    this.storageKey =
      options.storageKey || `dualstore:last-event-id:${this.root}:${collection}`;
    this.lastEventId = options.lastEventId ?? this._stored() ?? null;
    this.stats = { opens: 0, reopens: 0, errors: 0, inserts: 0, heartbeats: 0, duplicates: 0 };
    this.state = "idle";
    this._seen = new Set();
    this._order = [];
    this._source = null;
    this._timer = null;
    this._failures = 0;
    this._closed = false;
    this.open();
  }

  /** The URL the next EventSource connects to (`since`, `filter`, `access_token`). */
  url() {
    const url = new URL(`${this.root}/${segment(this.collection)}/stream`);
    const since = this.lastEventId || this.options.since;
    if (since) url.searchParams.set("since", since);
    if (this.options.filter !== undefined && this.options.filter !== null) {
      url.searchParams.set("filter", encodeFilter(this.options.filter));
    }
    if (this.options.token) url.searchParams.set("access_token", this.options.token);
    return url.toString();
  }

  /** Open (or reopen) the underlying EventSource. */
  open() {
    if (this._closed) return;
    const Impl = this.options.EventSource || globalThis.EventSource;
    if (!Impl) throw new Error("no EventSource: pass options.EventSource (e.g. the npm package)");
    const source = new Impl(this.url(), { withCredentials: !!this.options.withCredentials });
    this._source = source;
    this._setState("connecting");
    source.onopen = () => {
      this.stats.opens += 1;
      this._failures = 0;
      this._setState("open");
      if (this.options.onOpen) this.options.onOpen();
    };
    source.onerror = (event) => {
      this.stats.errors += 1;
      if (this.options.onError) this.options.onError(event);
      if (source.readyState === 2 /* CLOSED: the browser will not retry */) {
        this._scheduleReopen();
      } else {
        this._setState("reconnecting"); // the browser retries, sending Last-Event-ID
      }
    };
    source.addEventListener("insert", (event) => this._insert(event));
    source.addEventListener("heartbeat", (event) => {
      this.stats.heartbeats += 1;
      let t = null;
      try {
        t = JSON.parse(event.data).t;
      } catch {
        /* a malformed heartbeat still proves the stream is alive */
      }
      if (this.options.onHeartbeat) this.options.onHeartbeat(t);
    });
  }

  /** Stop for good: closes the EventSource and cancels any pending reopen. */
  close() {
    this._closed = true;
    clearTimeout(this._timer);
    if (this._source) this._source.close();
    this._setState("closed");
  }

  /** The underlying EventSource's readyState (0 connecting, 1 open, 2 closed). */
  get readyState() {
    return this._source ? this._source.readyState : 2;
  }

  _insert(event) {
    let doc;
    try {
      doc = JSON.parse(event.data);
    } catch (error) {
      this.stats.errors += 1;
      if (this.options.onError) this.options.onError(error);
      return;
    }
    if (event.lastEventId) {
      this.lastEventId = event.lastEventId;
      this._store(event.lastEventId);
    }
    if (this._seen.has(doc.id)) {
      this.stats.duplicates += 1;
      return;
    }
    this._seen.add(doc.id);
    this._order.push(doc.id);
    if (this._order.length > DEDUPE_WINDOW) this._seen.delete(this._order.shift());
    this.stats.inserts += 1;
    if (this.options.onInsert) this.options.onInsert(doc, event.lastEventId);
  }

  _scheduleReopen() {
    if (this._source) this._source.close();
    if (this._closed) return;
    this._failures += 1;
    this._setState("reconnecting");
    const base = this.options.reopenDelayMs ?? DEFAULT_REOPEN_MS;
    const cap = this.options.maxReopenDelayMs ?? MAX_REOPEN_MS;
    const delay = Math.min(cap, base * 2 ** Math.min(this._failures - 1, 16));
    this._timer = setTimeout(() => {
      this.stats.reopens += 1;
      this.open();
    }, delay + Math.random() * delay * 0.5);
  }

  _setState(state) {
    if (this.state === state) return;
    this.state = state;
    if (this.options.onStateChange) this.options.onStateChange(state);
  }

  _stored() {
    try {
      return this.storage ? this.storage.getItem(this.storageKey) : null;
    } catch {
      return null;
    }
  }

  _store(id) {
    try {
      if (this.storage) this.storage.setItem(this.storageKey, id);
    } catch {
      /* quota or privacy mode: resume then only works within this page */
    }
  }
}

/**
 * REST client on fetch. `baseUrl` is the server root ("" = this page's origin);
 * options: `token` (Authorization: Bearer), `fetch`, `EventSource` (for `stream`).
 */
export class DualStoreClient {
  constructor(baseUrl = "", options = {}) {
    this.baseUrl = baseUrl;
    this.root = apiRoot(baseUrl);
    this.options = options;
  }

  async _request(method, path, { params, body, headers } = {}) {
    const url = new URL(`${this.root}${path}`);
    for (const [name, value] of Object.entries(params || {})) {
      if (value !== undefined && value !== null) url.searchParams.set(name, String(value));
    }
    const sent = { Accept: "application/json", ...(headers || {}) };
    if (this.options.token) sent.Authorization = `Bearer ${this.options.token}`;
    if (body !== undefined) sent["Content-Type"] = "application/json";
    const fetchImpl = this.options.fetch || globalThis.fetch.bind(globalThis);
    const response = await fetchImpl(url.toString(), {
      method,
      headers: sent,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    let parsed = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = null;
    }
    if (!response.ok) {
      const problem =
        parsed && typeof parsed === "object"
          ? parsed
          : { type: "about:blank", title: response.statusText, status: response.status };
      throw new ProblemError(response.status, problem, response.headers);
    }
    return parsed;
  }

  /** Collection names. */
  async collections() {
    return (await this._request("GET", "/collections")).collections;
  }

  /** `{items, next}`: newest first; pass `next` as `cursor` for the following page. */
  async recent(collection, { limit, filter, cursor } = {}) {
    const params = { limit, cursor };
    if (filter !== undefined && filter !== null) params.filter = encodeFilter(filter);
    return this._request("GET", `/${segment(collection)}/recent`, { params });
  }

  /** `{items}` best first, each with a `score`. */
  async search(collection, q, { k, filter } = {}) {
    const params = { q, k };
    if (filter !== undefined && filter !== null) params.filter = encodeFilter(filter);
    return this._request("GET", `/${segment(collection)}/search`, { params });
  }

  /** One document; throws a ProblemError with status 404 when there is none. */
  async get(collection, id) {
    return this._request("GET", `/${segment(collection)}/${segment(id)}`);
  }

  /** Store a document; resolves to its id. */
  async insert(collection, text, { timestamp, metadata, idempotencyKey } = {}) {
    const body = { text };
    if (timestamp !== undefined) {
      body.timestamp = timestamp instanceof Date ? timestamp.toISOString() : timestamp;
    }
    if (metadata !== undefined) body.metadata = metadata;
    const headers = idempotencyKey ? { "Idempotency-Key": idempotencyKey } : {};
    return (await this._request("POST", `/${segment(collection)}`, { body, headers })).id;
  }

  /** A `DualStoreStream` of the collection with this client's token and EventSource. */
  stream(collection, options = {}) {
    return new DualStoreStream(this.baseUrl, collection, {
      token: this.options.token,
      EventSource: this.options.EventSource,
      ...options,
    });
  }
}
