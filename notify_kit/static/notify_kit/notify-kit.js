/**
 * notify-kit.js: the browser client of notify_kit (an ES module with no dependencies).
 *
 *   import { connect } from "/static/notify_kit/notify-kit.js";
 *   const client = connect("/ws/notifications/");
 *   const unsubscribe = client.subscribe("notes.note", "Xk9vB2pQ", (event) => render(event));
 *   await unsubscribe.ack;   // the "subscribed" frame, or rejects with a NotifyError
 *   await unsubscribe();     // the last handler of (model, id) sends "unsubscribe"
 *
 * Design:
 * - One socket per client, whatever the number of subscriptions. Subscriptions are keyed by
 *   (model in lower case, id); handlers of the same key share one subscription on the wire.
 * - Every subscribe/unsubscribe frame carries a fresh request_id (an incrementing integer) and
 *   returns a promise, settled by the `subscribed`/`unsubscribed`/`error` frame with that
 *   request_id. The pending requests are also the outbox: those made while the socket is not
 *   open are sent when it opens, and those whose answer a dropped socket lost are sent again
 *   on the next one (both are harmless to repeat). A request that was sent gets `ackTimeout` ms
 *   for its answer, after which it rejects with code "timeout".
 * - A close the user did not ask for reconnects with exponential backoff and full jitter:
 *   delay = random() * min(maxDelay, minDelay * 2 ** attempt), the attempt counter reset by
 *   each successful open. After a reconnect every live subscription is subscribed again.
 * - A subscription ends locally on `deleted`, `revoked`, or a failed subscribe (an error
 *   frame or a timeout): it is not subscribed again after a reconnect.
 * - Nothing the server sends throws: frames that are not JSON or of unknown type are ignored,
 *   and errors in handlers are passed to `onError` (default console.error).
 * - No echo of your own writes: the client connects with `?echo=skip` (option `echo`), the
 *   server's `welcome` frame gives the socket an opaque id (`client.socketId`, null until then
 *   and again while reconnecting), and API calls made with `client.headers()` are not notified
 *   back to this socket (with `echo: "mark"` they are, flagged `echo: true`).
 */

const EVENT_TYPES = new Set(["updated", "deleted", "revoked"]);
const MAX_TIMER_DELAY = 2 ** 31 - 1; // larger setTimeout delays overflow and fire at once
const OPEN = 1; // WebSocket.OPEN
const ECHO_MODES = new Set(["skip", "mark", "all"]);
/** The request header that names the socket whose writes they are (notify_kit.middleware). */
export const SOCKET_ID_HEADER = "X-Notify-Socket-ID";

/** An error of this client: `code` is the server's error code, or "timeout" or "closed". */
export class NotifyError extends Error {
  constructor(code, detail, { model, id, frame } = {}) {
    super(model ? `${code}: ${detail} (${model} ${id})` : `${code}: ${detail}`);
    this.name = "NotifyError";
    this.code = code;
    this.detail = detail;
    this.model = model;
    this.id = id;
    this.frame = frame; // the server's error frame, if there was one
  }
}

/** The ws: or wss: URL of `path`, resolved against the page's location. */
export function webSocketUrl(path, location = globalThis.location) {
  const url = new URL(path, location?.href);
  if (url.protocol === "http:") url.protocol = "ws:";
  else if (url.protocol === "https:") url.protocol = "wss:";
  return url.href;
}

const keyOf = (model, id) => JSON.stringify([model, id]);
const noop = () => {};

export class NotifyClient {
  #url;
  #options;
  #WebSocket;
  #setTimeout;
  #clearTimeout;
  #random;
  #ws = null; // the current socket; events of any other socket are ignored
  #status = null;
  #socketId = null; // the current socket's id, from its welcome frame
  #closed = false;
  #attempt = 0; // reconnect attempts since the last successful open
  #retryTimer = null;
  #nextRequestId = 1;
  #pending = new Map(); // request_id -> {frame, resolve, reject, timer, entry, resubscribe}
  #subs = new Map(); // key -> {key, model, id, handlers: Set<{handler}>, ack}

  constructor(path, options = {}) {
    this.#options = { minDelay: 500, maxDelay: 30000, ackTimeout: 10000, ...options };
    const echo = options.echo ?? "skip";
    if (!ECHO_MODES.has(echo)) throw new TypeError(`echo must be "skip", "mark" or "all", not ${JSON.stringify(echo)}`);
    const url = new URL(webSocketUrl(path, options.location ?? globalThis.location));
    // "all" asks for no socket id: the server then sends no welcome frame, as to older clients.
    if (echo !== "all") url.searchParams.set("echo", echo);
    this.#url = url.href;
    this.#WebSocket = options.WebSocket ?? globalThis.WebSocket;
    // Called unbound: window.setTimeout throws "Illegal invocation" when called on another object.
    const set = options.setTimeout ?? globalThis.setTimeout;
    const clear = options.clearTimeout ?? globalThis.clearTimeout;
    this.#setTimeout = (fn, ms) => set(fn, ms);
    this.#clearTimeout = (timer) => clear(timer);
    this.#random = options.random ?? Math.random;
    this.#open();
    this.#setStatus("connecting");
  }

  /** "connecting" | "connected" | "reconnecting" | "closed" */
  get status() {
    return this.#status;
  }

  /** The current socket's opaque id (from the server's `welcome` frame), or null. */
  get socketId() {
    return this.#socketId;
  }

  /**
   * Headers for your API calls: `{"X-Notify-Socket-ID": id}`, so that the changes the call makes
   * are not notified back to this socket; `{}` while it has no id. Spread into fetch's headers.
   */
  headers() {
    return this.#socketId === null ? {} : { [SOCKET_ID_HEADER]: this.#socketId };
  }

  /** The subscriptions this client holds (acknowledged or awaiting their ack). */
  subscriptions() {
    return [...this.#subs.values()].map(({ model, id }) => ({ model, id }));
  }

  /**
   * Call `handler(frame)` with every `updated`, `deleted` and `revoked` frame of (model, id).
   * Returns an unsubscribe function (returning a promise of the `unsubscribed` frame, or of null
   * when nothing was sent); its `.ack` is the promise of the `subscribed` frame.
   */
  subscribe(model, id, handler) {
    if (typeof handler !== "function") throw new TypeError("subscribe(model, id, handler): handler must be a function");
    model = String(model).toLowerCase();
    id = String(id);
    const key = keyOf(model, id);
    if (this.#closed) {
      const unsubscribe = () => Promise.resolve(null);
      unsubscribe.ack = Promise.reject(new NotifyError("closed", "The client is closed.", { model, id }));
      unsubscribe.ack.catch(noop);
      return unsubscribe;
    }
    let entry = this.#subs.get(key);
    if (!entry) {
      entry = { key, model, id, handlers: new Set(), ack: null };
      this.#subs.set(key, entry);
      entry.ack = this.#subscribeOnWire(entry, false);
    }
    const listener = { handler }; // one per call, so the same function may subscribe twice
    entry.handlers.add(listener);
    let done = false;
    const unsubscribe = () => {
      if (done) return Promise.resolve(null);
      done = true;
      entry.handlers.delete(listener);
      if (entry.handlers.size > 0 || this.#subs.get(key) !== entry) return Promise.resolve(null);
      this.#subs.delete(key);
      return this.#request({ type: "unsubscribe", model, id });
    };
    unsubscribe.ack = entry.ack;
    return unsubscribe;
  }

  /** Close for good: no reconnect, pending promises reject with code "closed". */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    this.#clearTimeout(this.#retryTimer);
    const ws = this.#ws;
    this.#ws = null;
    this.#socketId = null;
    ws?.close();
    for (const request of this.#pending.values()) {
      this.#clearTimeout(request.timer);
      request.reject(new NotifyError("closed", "The client is closed.", request.frame));
    }
    this.#pending.clear();
    this.#subs.clear();
    this.#setStatus("closed");
  }

  // --- requests -----------------------------------------------------------------------------

  /** Send (or queue) a request; the promise settles with its answer. */
  #request(frame, entry = null, resubscribe = false) {
    if (this.#closed) return Promise.resolve(null);
    const request = { frame: { ...frame, request_id: this.#nextRequestId++ }, entry, resubscribe, timer: null };
    const promise = new Promise((resolve, reject) => Object.assign(request, { resolve, reject }));
    promise.catch(noop); // a caller that ignores the promise must not cause "unhandled rejection"
    this.#pending.set(request.frame.request_id, request);
    if (this.#isOpen()) this.#send(request);
    return promise;
  }

  #subscribeOnWire(entry, resubscribe) {
    return this.#request({ type: "subscribe", model: entry.model, id: entry.id }, entry, resubscribe);
  }

  #send(request) {
    this.#ws.send(JSON.stringify(request.frame));
    const { ackTimeout } = this.#options;
    if (Number.isFinite(ackTimeout) && ackTimeout > 0) {
      request.timer = this.#setTimeout(() => {
        const { model, id, request_id } = request.frame;
        const live = request.entry && this.#subs.get(request.entry.key) === request.entry;
        this.#settle(request_id, null, new NotifyError("timeout", `No answer within ${ackTimeout} ms.`, { model, id }));
        // The server may still subscribe; tell it we do not want this one (answer ignored).
        if (live && this.#isOpen()) this.#ws.send(JSON.stringify({ type: "unsubscribe", model, id }));
      }, ackTimeout);
    }
  }

  #settle(requestId, frame, error) {
    const request = this.#pending.get(requestId);
    if (!request) return; // unknown, or already timed out
    this.#pending.delete(requestId);
    this.#clearTimeout(request.timer);
    if (!error) return request.resolve(frame);
    const { entry } = request;
    if (entry && this.#subs.get(entry.key) === entry) this.#subs.delete(entry.key); // failed subscribe
    request.reject(error);
    if (request.resubscribe) this.#report(error); // nobody awaits a resubscription's promise
  }

  // --- socket -------------------------------------------------------------------------------

  #open() {
    const ws = new this.#WebSocket(this.#url);
    this.#ws = ws;
    ws.onopen = () => ws === this.#ws && this.#opened();
    ws.onmessage = (event) => ws === this.#ws && this.#receive(event.data);
    // Browsers follow an error with a close event; some runtimes (Node 20) fire the error alone.
    ws.onclose = ws.onerror = () => ws === this.#ws && this.#dropped();
  }

  #isOpen() {
    return this.#ws?.readyState === OPEN;
  }

  #opened() {
    this.#attempt = 0;
    // The queued and the lost requests first, in their order; then a subscribe for every live
    // subscription that has none in flight.
    const requests = [...this.#pending.values()];
    const covered = new Set(requests.map((request) => request.entry));
    for (const request of requests) this.#send(request);
    for (const entry of [...this.#subs.values()]) {
      if (!covered.has(entry)) this.#subscribeOnWire(entry, true);
    }
    this.#setStatus("connected"); // last: onStatus may subscribe or close
  }

  #dropped() {
    const ws = this.#ws;
    this.#ws = null; // first: close() may fire events synchronously (Node's undici does)
    this.#socketId = null; // the next socket gets an id of its own
    ws.close(); // a no-op unless only an error event came
    // Unanswered requests stay pending and are sent again on the next socket; their time for
    // an answer starts again then.
    for (const request of this.#pending.values()) this.#clearTimeout(request.timer);
    const { minDelay, maxDelay } = this.#options;
    const delay = this.#random() * Math.min(maxDelay, minDelay * 2 ** this.#attempt++, MAX_TIMER_DELAY);
    this.#retryTimer = this.#setTimeout(() => {
      this.#retryTimer = null;
      this.#open();
    }, delay);
    this.#setStatus("reconnecting"); // after the timer: onStatus may close
  }

  #receive(data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return; // not JSON (or a binary frame): ignored
    }
    const type = frame?.type;
    if (type === "subscribed" || type === "unsubscribed") {
      this.#settle(frame.request_id, frame, null);
    } else if (type === "error") {
      const request = this.#pending.get(frame.request_id);
      const error = new NotifyError(String(frame.code ?? "unknown"), String(frame.detail ?? ""), { ...request?.frame, frame });
      if (request) this.#settle(frame.request_id, null, error);
      else this.#report(error); // the server could not tell which request failed
    } else if (type === "welcome") {
      this.#socketId = typeof frame.socket_id === "string" ? frame.socket_id : null;
    } else if (EVENT_TYPES.has(type)) {
      this.#dispatch(frame);
    }
  }

  #dispatch(frame) {
    const key = keyOf(String(frame.model).toLowerCase(), String(frame.id));
    const entry = this.#subs.get(key);
    if (!entry) return;
    // Forget first, so that a handler may subscribe again from inside the call.
    if (frame.type !== "updated") this.#subs.delete(key);
    for (const { handler } of [...entry.handlers]) {
      try {
        handler(frame);
      } catch (error) {
        this.#report(error);
      }
    }
  }

  #setStatus(status) {
    if (status === this.#status) return; // "reconnecting" lasts over several attempts
    this.#status = status;
    try {
      this.#options.onStatus?.(status);
    } catch (error) {
      this.#report(error);
    }
  }

  #report(error) {
    const onError = this.#options.onError ?? ((e) => console.error("notify-kit:", e));
    onError(error);
  }
}

/** Open a client on `path` (relative to the page, or an absolute ws(s):// or http(s):// URL). */
export function connect(path, options) {
  return new NotifyClient(path, options);
}

export default connect;
