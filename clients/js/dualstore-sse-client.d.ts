// SPDX-License-Identifier: GPL-3.0-or-later
/** Type declarations of dualstore-sse-client.js (the DualStore HTTP browser client). */

/** A stored document as the API returns it. */
export interface DualStoreDocument {
  id: string;
  text: string;
  timestamp: string;
  metadata: Record<string, unknown>;
  [key: string]: unknown;
}

/** A filter object (the spec's portable filter language) or an already encoded string. */
export type Filter = Record<string, unknown> | string;

/** An RFC 9457 problem+json body. */
export interface Problem {
  type: string;
  title?: string;
  status?: number;
  detail?: string;
  instance?: string;
  [key: string]: unknown;
}

export type StreamState = "idle" | "connecting" | "open" | "reconnecting" | "closed";

/** What the wrapper needs of an EventSource implementation (the browser's, or a polyfill). */
export interface EventSourceLike {
  readonly readyState: number;
  onopen: ((event: never) => unknown) | null;
  onerror: ((event: never) => unknown) | null;
  addEventListener(type: string, listener: (event: MessageEventLike) => void): void;
  close(): void;
}

export interface MessageEventLike {
  readonly data: string;
  readonly lastEventId: string;
}

export type EventSourceConstructor = new (
  url: string,
  init?: { withCredentials?: boolean },
) => EventSourceLike;

/** Where the last event id is kept (localStorage by default). */
export interface IdStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

export interface StreamStats {
  opens: number;
  reopens: number;
  errors: number;
  inserts: number;
  heartbeats: number;
  duplicates: number;
}

export interface StreamOptions {
  /** Sent as `access_token` (the query string: prefer short-lived tokens). */
  token?: string;
  filter?: Filter | null;
  /** An event id or an RFC 3339 time; used when no last id is known. */
  since?: string;
  /** Resume after this event id. */
  lastEventId?: string | null;
  /** Where the last id is kept; default localStorage, `null` to keep none. */
  storage?: IdStorage | null;
  storageKey?: string;
  /** An EventSource implementation (e.g. the `eventsource` npm package in Node). */
  EventSource?: EventSourceConstructor;
  withCredentials?: boolean;
  onInsert?: (doc: DualStoreDocument, eventId: string) => void;
  onHeartbeat?: (t: string | null) => void;
  onOpen?: () => void;
  onError?: (error: unknown) => void;
  onStateChange?: (state: StreamState) => void;
  /** First delay of the wrapper's own reopen after the browser gave up (default 1000). */
  reopenDelayMs?: number;
  /** Upper bound of that delay (default 30000). */
  maxReopenDelayMs?: number;
}

export interface ClientOptions {
  /** Sent as `Authorization: Bearer` on REST calls and as `access_token` on streams. */
  token?: string;
  fetch?: typeof globalThis.fetch;
  EventSource?: EventSourceConstructor;
}

export interface Page {
  items: DualStoreDocument[];
  next: string | null;
}

export interface SearchResult {
  items: Array<DualStoreDocument & { score: number }>;
}

/** Base64url (no padding) of the UTF-8 JSON of a filter object; strings pass unchanged. */
export function encodeFilter(filter: Filter): string;

/** Normalise a server URL to its `/v1` root ("" = this page's origin). */
export function apiRoot(baseUrl?: string): string;

/** An error response: `status`, the `problem` body, and `retryAfter` seconds (or null). */
export class ProblemError extends Error {
  constructor(status: number, problem: Problem | null, headers?: { get(name: string): string | null });
  readonly status: number;
  readonly problem: Problem;
  readonly type: string;
  readonly retryAfter: number | null;
}

/** A live stream of one collection; opens on construction. */
export class DualStoreStream {
  constructor(baseUrl: string, collection: string, options?: StreamOptions);
  readonly root: string;
  readonly collection: string;
  lastEventId: string | null;
  readonly stats: StreamStats;
  readonly state: StreamState;
  /** The underlying EventSource's readyState (0 connecting, 1 open, 2 closed). */
  readonly readyState: number;
  /** The URL the next EventSource connects to (`since`, `filter`, `access_token`). */
  url(): string;
  /** Open (or reopen) the underlying EventSource. */
  open(): void;
  /** Stop for good: closes the EventSource and cancels any pending reopen. */
  close(): void;
}

/** REST client on fetch; errors are `ProblemError`s. */
export class DualStoreClient {
  constructor(baseUrl?: string, options?: ClientOptions);
  readonly baseUrl: string;
  readonly root: string;
  collections(): Promise<string[]>;
  recent(
    collection: string,
    options?: { limit?: number; filter?: Filter | null; cursor?: string },
  ): Promise<Page>;
  search(
    collection: string,
    q: string,
    options?: { k?: number; filter?: Filter | null },
  ): Promise<SearchResult>;
  get(collection: string, id: string): Promise<DualStoreDocument>;
  insert(
    collection: string,
    text: string,
    options?: {
      timestamp?: Date | string;
      metadata?: Record<string, unknown>;
      idempotencyKey?: string;
    },
  ): Promise<string>;
  stream(collection: string, options?: StreamOptions): DualStoreStream;
}
