// Type declarations for notify-kit.js, the browser client of notify_kit.

/** The request header that names the socket whose writes they are: "X-Notify-Socket-ID". */
export const SOCKET_ID_HEADER: "X-Notify-Socket-ID";

/**
 * What happens to notifications of the writes this socket's own API calls made (with `client.headers()`):
 * "skip" them (default), deliver them "mark"ed with `echo: true`, or "all": ask for no socket id.
 */
export type EchoMode = "skip" | "mark" | "all";

/** The connection state reported by `client.status` and `onStatus`. */
export type NotifyStatus = "connecting" | "connected" | "reconnecting" | "closed";

/** Error codes: the server's, plus "timeout" (no answer within ackTimeout) and "closed" (client closed). */
export type NotifyErrorCode =
  | "invalid"
  | "not_found"
  | "limit"
  | "rate_limited"
  | "unavailable"
  | "timeout"
  | "closed"
  | (string & {});

/** The answer to an instance subscribe; `data` (the object) only when asked with `snapshot: true`. */
export interface SubscribedFrame<T = unknown> {
  type: "subscribed";
  model: string;
  id: string;
  request_id?: number;
  data?: T;
}

export interface UnsubscribedFrame {
  type: "unsubscribed";
  model: string;
  id: string;
  request_id?: number;
}

export interface UpdatedFrame<T = Record<string, unknown>> {
  type: "updated";
  model: string;
  id: string;
  data: T;
  changed: string[];
  /** Present when the server folded N waiting updates of this object into this one. */
  coalesced?: number;
  /** The request_id of the subscribe that made the subscription (always, for a collection). */
  request_id?: number;
  /** With `echo: "mark"`: this socket's own API call made the change. */
  echo?: true;
}

/** An object left the view (or was deleted): the two look the same on purpose. */
export interface DeletedFrame {
  type: "deleted";
  model: string;
  id: string;
  request_id?: number;
  /** With `echo: "mark"`: this socket's own API call made the change. */
  echo?: true;
}

/** The server dropped the subscription: the user lost access. */
export interface RevokedFrame {
  type: "revoked";
  model: string;
  id: string;
}

/** The server's first frame to a client that asked for a socket id (`?echo=skip` or `mark`). */
export interface WelcomeFrame {
  type: "welcome";
  /** Opaque; send it as the X-Notify-Socket-ID header of your API calls. */
  socket_id: string;
}

export interface ErrorFrame {
  type: "error";
  code: NotifyErrorCode;
  detail: string;
  request_id?: number;
}

/** What a handler receives: the whole server frame. */
export type NotifyEvent<T = Record<string, unknown>> = UpdatedFrame<T> | DeletedFrame | RevokedFrame;

export type NotifyHandler<T = Record<string, unknown>> = (event: NotifyEvent<T>) => void;

/**
 * Synthetic (never on the wire): the object's state, given to the handlers of a subscription made
 * with `snapshot: true` after the first subscribe and after every reconnect.
 */
export interface InstanceSnapshot<T = Record<string, unknown>> {
  type: "snapshot";
  model: string;
  id: string;
  data: T;
}

/** The handler of a subscription made with `snapshot: true`. */
export type SnapshotHandler<T = Record<string, unknown>> = (event: NotifyEvent<T> | InstanceSnapshot<T>) => void;

/** The actions a subscription may ask for (default: all of them). */
export type NotifyAction = "created" | "updated" | "deleted";

/** The 4th argument of `subscribe()`. */
export interface SubscribeOptions<T = Record<string, unknown>> {
  /** Only these events (an instance gets `updated` and `deleted`). */
  actions?: readonly NotifyAction[];
  /** Only these fields of the serializer in `data` (its `id` always); type T accordingly, e.g. Pick<Note, "id" | "title">. */
  fields?: ReadonlyArray<keyof T & string>;
  /** The `subscribed` frame carries the object in `data`; the handler gets an InstanceSnapshot (default false). */
  snapshot?: boolean;
}

/** The function `subscribe()` returns; T defaults to unknown so that any Unsubscribe<T> is an Unsubscribe. */
export interface Unsubscribe<T = unknown> {
  /**
   * Remove this handler. The last handler of (model, id) sends an `unsubscribe` frame and
   * resolves to the `unsubscribed` frame; otherwise (or on a second call) resolves to null.
   */
  (): Promise<UnsubscribedFrame | null>;
  /** Resolves to the `subscribed` frame; rejects with a NotifyError (e.g. code "not_found"). */
  readonly ack: Promise<SubscribedFrame<T>>;
}

// --- collections ------------------------------------------------------------------------------

/** A filter value: a JSON scalar; a foreign key to a live model is its HashID. */
export type FilterValue = string | number | boolean | null;

/** Exact match on fields of the model's `live_filter_fields`. */
export type CollectionFilter = Readonly<Record<string, FilterValue>>;

/** A row entered the subscriber's view (created, shared with them, or now matching the filter). */
export interface CreatedFrame<T = Record<string, unknown>> {
  type: "created";
  model: string;
  id: string;
  data: T;
  request_id?: number;
  /** With `echo: "mark"`: this socket's own API call made the change. */
  echo?: true;
}

/**
 * Synthetic (never on the wire): the collection's rows were REPLACED by a snapshot, after the first
 * subscribe and after every reconnect (rows deleted while offline are gone). `rows` is the
 * collection's own live Map.
 */
export interface CollectionSnapshot<T = Record<string, unknown>> {
  type: "snapshot";
  model: string;
  filter?: CollectionFilter;
  rows: ReadonlyMap<string, T>;
  /** The server cut the snapshot at its SNAPSHOT_LIMIT. */
  truncated: boolean;
}

/** What a collection's onChange callbacks receive: the snapshot, or the whole event frame. */
export type CollectionEvent<T = Record<string, unknown>> =
  | CollectionSnapshot<T>
  | CreatedFrame<T>
  | UpdatedFrame<T>
  | DeletedFrame;

export type CollectionHandler<T = Record<string, unknown>> = (event: CollectionEvent<T>) => void;

/** The answer to a collection subscribe; `data` (the rows) only with `snapshot` (the default). */
export interface CollectionSubscribedFrame<T = Record<string, unknown>> {
  type: "subscribed";
  model: string;
  filter?: CollectionFilter;
  request_id?: number;
  data?: T[];
  truncated?: boolean;
}

export interface CollectionUnsubscribedFrame {
  type: "unsubscribed";
  model: string;
  filter?: CollectionFilter;
  request_id?: number;
}

/** The 2nd argument of `collection()`. Views of one (model, filter) must agree on actions, fields, snapshot. */
export interface CollectionOptions<T = Record<string, unknown>> {
  /** Exact match on `live_filter_fields` (default: every row the user may see). */
  filter?: CollectionFilter;
  /** Only these events (default all); `rows` then reflects only those. */
  actions?: readonly NotifyAction[];
  /** Only these fields of the serializer in `data` (its `id` always); type T accordingly. */
  fields?: ReadonlyArray<keyof T & string>;
  /** Start from the current rows, and replace them after each reconnect (default true). */
  snapshot?: boolean;
  /** The same as calling `onChange(handler)` at once. */
  onChange?: CollectionHandler<T>;
}

/** What `client.collection()` returns: a live view of the rows a user may see. */
export interface LiveCollection<T = Record<string, unknown>> {
  /** In lower case. */
  readonly model: string;
  readonly filter: CollectionFilter | undefined;
  /** id -> data, in order of arrival; created/updated upsert, deleted removes, a snapshot replaces all. Frozen by close(). */
  readonly rows: ReadonlyMap<string, T>;
  /** The last snapshot was cut at the server's SNAPSHOT_LIMIT. */
  readonly truncated: boolean;
  /** Resolves to the first `subscribed` frame; rejects with a NotifyError (e.g. "invalid", "not_found"). */
  readonly ack: Promise<CollectionSubscribedFrame<T>>;
  /** Call `handler` after each change has been applied to `rows`; returns a function removing it. */
  onChange(handler: CollectionHandler<T>): () => void;
  /** Stop following; the last view of (model, filter) sends `unsubscribe` and resolves to its answer, else null. */
  close(): Promise<CollectionUnsubscribedFrame | null>;
}

/**
 * The minimal WebSocket the client uses (`new WebSocket(url)`, on* handlers, readyState). The
 * client assigns the handlers and reads only `event.data` of a message; the events are `any` so
 * that the browser's and Node's WebSocket (whose handlers take a MessageEvent) fit.
 */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(): void;
  onopen: ((event: any) => void) | null;
  onmessage: ((event: any) => void) | null;
  onclose: ((event: any) => void) | null;
  onerror: ((event: any) => void) | null;
}

export interface NotifyOptions {
  /** WebSocket constructor (default globalThis.WebSocket). */
  WebSocket?: new (url: string) => WebSocketLike;
  /** Backoff floor in ms (default 500). */
  minDelay?: number;
  /** Backoff ceiling in ms (default 30000). Delay = random() * min(maxDelay, minDelay * 2 ** attempt). */
  maxDelay?: number;
  /** Ms a sent request waits for its answer before rejecting with code "timeout" (default 10000; 0 or Infinity: never). */
  ackTimeout?: number;
  /** Own echoes: "skip" (default), "mark" (delivered with `echo: true`) or "all" (no socket id asked for). */
  echo?: EchoMode;
  /** Called on every status change. */
  onStatus?: (status: NotifyStatus) => void;
  /**
   * Called with errors nobody else sees: a throwing handler or onStatus, an error frame without
   * a known request_id, a failed re-subscription after a reconnect (default console.error).
   */
  onError?: (error: unknown) => void;
  setTimeout?: (callback: () => void, ms: number) => unknown;
  clearTimeout?: (timer: any) => void;
  /** Returns a number in [0, 1) (default Math.random). */
  random?: () => number;
  /** Base for relative paths (default globalThis.location). */
  location?: { readonly href: string };
}

export class NotifyError extends Error {
  constructor(
    code: NotifyErrorCode,
    detail: string,
    context?: { model?: string; id?: string; filter?: CollectionFilter; frame?: ErrorFrame },
  );
  readonly name: "NotifyError";
  readonly code: NotifyErrorCode;
  readonly detail: string;
  /** The model and id of the request that failed, when known. */
  readonly model?: string;
  readonly id?: string;
  /** The filter of the collection request that failed, when it had one. */
  readonly filter?: CollectionFilter;
  /** The server's error frame, when the error came from one. */
  readonly frame?: ErrorFrame;
}

export class NotifyClient {
  constructor(path: string | URL, options?: NotifyOptions);
  readonly status: NotifyStatus;
  /** The current socket's opaque id from the server's `welcome` frame; null before it and while reconnecting. */
  readonly socketId: string | null;
  /** `{"X-Notify-Socket-ID": socketId}` to add to API calls, or `{}` while there is no id. */
  headers(): Record<string, string>;
  /** The instance subscriptions held (acknowledged or awaiting their ack); models in lower case. */
  subscriptions(): Array<{ model: string; id: string }>;
  /** With `snapshot: true`, the handler also receives InstanceSnapshot events. */
  subscribe<T = Record<string, unknown>>(
    model: string,
    id: string,
    handler: SnapshotHandler<T>,
    options: SubscribeOptions<T> & { snapshot: true },
  ): Unsubscribe<T>;
  subscribe<T = Record<string, unknown>>(
    model: string,
    id: string,
    handler: NotifyHandler<T>,
    options?: SubscribeOptions<T> & { snapshot?: false },
  ): Unsubscribe<T>;
  /** `snapshot` not known until run time: the handler must expect an InstanceSnapshot. */
  subscribe<T = Record<string, unknown>>(
    model: string,
    id: string,
    handler: SnapshotHandler<T>,
    options: SubscribeOptions<T>,
  ): Unsubscribe<T>;
  /** Follow the rows of `model` the user may see (a subscribe without id); see LiveCollection. */
  collection<T = Record<string, unknown>>(model: string, options?: CollectionOptions<T>): LiveCollection<T>;
  /** Close for good: status "closed", no reconnect, pending promises reject with code "closed". */
  close(): void;
}

/** The ws:/wss: URL of `path` resolved against `location` (http -> ws, https -> wss). */
export function webSocketUrl(path: string | URL, location?: { readonly href: string }): string;

/** Open a client; `path` is relative to the page or an absolute http(s)/ws(s) URL. */
export function connect(path: string | URL, options?: NotifyOptions): NotifyClient;

export default connect;
