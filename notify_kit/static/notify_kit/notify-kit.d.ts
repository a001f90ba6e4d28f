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

export interface SubscribedFrame {
  type: "subscribed";
  model: string;
  id: string;
  request_id?: number;
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
  /** With `echo: "mark"`: this socket's own API call made the change. */
  echo?: true;
}

export interface DeletedFrame {
  type: "deleted";
  model: string;
  id: string;
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

/** The function `subscribe()` returns. */
export interface Unsubscribe {
  /**
   * Remove this handler. The last handler of (model, id) sends an `unsubscribe` frame and
   * resolves to the `unsubscribed` frame; otherwise (or on a second call) resolves to null.
   */
  (): Promise<UnsubscribedFrame | null>;
  /** Resolves to the `subscribed` frame; rejects with a NotifyError (e.g. code "not_found"). */
  readonly ack: Promise<SubscribedFrame>;
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
  constructor(code: NotifyErrorCode, detail: string, context?: { model?: string; id?: string; frame?: ErrorFrame });
  readonly name: "NotifyError";
  readonly code: NotifyErrorCode;
  readonly detail: string;
  /** The model and id of the request that failed, when known. */
  readonly model?: string;
  readonly id?: string;
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
  /** The subscriptions held (acknowledged or awaiting their ack); models in lower case. */
  subscriptions(): Array<{ model: string; id: string }>;
  subscribe<T = Record<string, unknown>>(model: string, id: string, handler: NotifyHandler<T>): Unsubscribe;
  /** Close for good: status "closed", no reconnect, pending promises reject with code "closed". */
  close(): void;
}

/** The ws:/wss: URL of `path` resolved against `location` (http -> ws, https -> wss). */
export function webSocketUrl(path: string | URL, location?: { readonly href: string }): string;

/** Open a client; `path` is relative to the page or an absolute http(s)/ws(s) URL. */
export function connect(path: string | URL, options?: NotifyOptions): NotifyClient;

export default connect;
