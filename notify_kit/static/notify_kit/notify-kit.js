/**
 * notify-kit.js: the browser client of notify_kit (an ES module with no dependencies).
 *
 *   import { connect } from "/static/notify_kit/notify-kit.js";
 *   const client = connect("/ws/notifications/");
 *   const unsubscribe = client.subscribe("notes.note", "Xk9vB2pQ", (event) => render(event));
 *   await unsubscribe.ack;   // the "subscribed" frame, or rejects with a NotifyError
 *   await unsubscribe();     // the last handler of (model, id) sends "unsubscribe"
 *
 *   const notes = client.collection("notes.note", { filter: { archived: false } });
 *   notes.onChange((event) => render([...notes.rows.values()]));  // snapshot, created, updated, deleted
 *   await notes.ack;         // the "subscribed" frame (its `data` is the snapshot)
 *   await notes.close();     // the last view of (model, filter) sends "unsubscribe"
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
 * - Options of an instance subscription (4th argument of subscribe): `actions`, `fields`,
 *   `snapshot`. With `snapshot: true` the handler also receives a synthetic
 *   `{type: "snapshot", model, id, data}` each time the server sends the object's state: after
 *   the first subscribe and after every re-subscription following a reconnect.
 * - Collections (`client.collection(model, {filter, actions, fields, snapshot, onChange})`): a
 *   subscribe without `id`, identified by (model, filter) as the server does (the filter compared
 *   as JSON with sorted keys); views of the same identity share one subscription on the wire, so
 *   they must ask for the same actions, fields and snapshot. Its event frames (created, updated,
 *   deleted) carry the request_id of the subscribe that made it, and are routed by it: after a
 *   reconnect the collection subscribes again with a new request_id, and frames of older ones
 *   are ignored (they never reach an instance handler either). `rows` is a Map id -> data in order
 *   of arrival: created and updated are upserts (a row may arrive twice around the snapshot),
 *   deleted removes. Each snapshot (default on) REPLACES the rows, then reaches the callbacks as a
 *   synthetic `{type: "snapshot", model, filter, rows, truncated}`; event frames that arrive
 *   before the snapshot they follow are held and applied after it.
 * - Nothing the server sends throws: frames that are not JSON or of unknown type are ignored,
 *   and errors in handlers are passed to `onError` (default console.error).
 * - No echo of your own writes: the client connects with `?echo=skip` (option `echo`), the
 *   server's `welcome` frame gives the socket an opaque id (`client.socketId`, null until then
 *   and again while reconnecting), and API calls made with `client.headers()` are not notified
 *   back to this socket (with `echo: "mark"` they are, flagged `echo: true`).
 */

const EVENT_TYPES = new Set(["updated", "deleted", "revoked"]);
const COLLECTION_EVENT_TYPES = new Set(["created", "updated", "deleted"]);
const MAX_TIMER_DELAY = 2 ** 31 - 1; // larger setTimeout delays overflow and fire at once
const OPEN = 1; // WebSocket.OPEN
const ECHO_MODES = new Set(["skip", "mark", "all"]);
/** The request header that names the socket whose writes they are (notify_kit.middleware). */
export const SOCKET_ID_HEADER = "X-Notify-Socket-ID";

/** An error of this client: `code` is the server's error code, or "timeout" or "closed". */
export class NotifyError extends Error {
  constructor(code, detail, { model, id, filter, frame } = {}) {
    const what = id !== undefined ? ` ${id}` : filter !== undefined ? ` ${canonicalJson(filter)}` : "";
    super(model ? `${code}: ${detail} (${model}${what})` : `${code}: ${detail}`);
    this.name = "NotifyError";
    this.code = code;
    this.detail = detail;
    this.model = model;
    this.id = id;
    this.filter = filter; // the filter of a failed collection request
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

// --- collections: pure helpers ---------------------------------------------------------------

/** JSON with object keys sorted and undefined members left out: how the server compares filters. */
function canonicalJson(value) {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value && typeof value === "object") {
    const keys = Object.keys(value).filter((k) => value[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(",")}}`;
  }
  return JSON.stringify(value ?? null);
}

// Two collections with the same (model, filter) are one subscription on the server; its key is
// shaped unlike an instance key ([model, id]) so that the two can share one table.
const collectionKeyOf = (model, filter) => JSON.stringify([model, null, canonicalJson(filter ?? {})]);

/** The `actions`, `fields` and `snapshot` members of a subscribe frame, only those asked for. */
function wireOptions({ actions, fields, snapshot } = {}) {
  const wire = {}; // not "options": tsc.test.mjs reads `options.X` as a client option
  if (actions !== undefined) wire.actions = [...actions];
  if (fields !== undefined) wire.fields = [...fields];
  if (snapshot) wire.snapshot = true;
  return wire;
}

/** The same options in any order: a second subscriber of one subscription must ask for these. */
const sameOptions = (a, b) =>
  canonicalJson({ ...a, actions: a.actions && [...a.actions].sort(), fields: a.fields && [...a.fields].sort() }) ===
  canonicalJson({ ...b, actions: b.actions && [...b.actions].sort(), fields: b.fields && [...b.fields].sort() });

/** The frame that ends the subscription of `entry`: it names the same (model, id) or (model, filter). */
function unsubscribeFrame(entry) {
  if (entry.kind !== "collection") return { type: "unsubscribe", model: entry.model, id: entry.id };
  return entry.filter === undefined
    ? { type: "unsubscribe", model: entry.model }
    : { type: "unsubscribe", model: entry.model, filter: entry.filter };
}

/** What `client.collection()` returns: one view of a shared collection subscription. */
class LiveCollection {
  #entry;
  #release;
  #rows = null; // a copy of the rows once closed, so that they stop changing
  #listeners = new Set();

  constructor(entry, release) {
    this.#entry = entry;
    this.#release = release;
    this.model = entry.model;
    this.filter = entry.filter;
    this.ack = entry.ack;
  }

  /** Map id -> data of the rows in view, in order of arrival; replaced by every snapshot. */
  get rows() {
    return this.#rows ?? this.#entry.rows;
  }

  /** True when the last snapshot was cut at the server's SNAPSHOT_LIMIT. */
  get truncated() {
    return this.#entry.truncated;
  }

  /** Call `handler(event)` with every snapshot, created, updated and deleted; returns its remover. */
  onChange(handler) {
    if (typeof handler !== "function") throw new TypeError("onChange(handler): handler must be a function");
    const listener = { handler }; // one per call, so the same function may listen twice
    this.#listeners.add(listener);
    if (!this.#rows) this.#entry.listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
      this.#entry.listeners.delete(listener);
    };
  }

  /** Stop following; the last view of (model, filter) sends "unsubscribe" (a promise of its answer). */
  close() {
    if (this.#rows) return Promise.resolve(null);
    this.#rows = new Map(this.#entry.rows);
    for (const listener of this.#listeners) this.#entry.listeners.delete(listener);
    return this.#release(this);
  }
}

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
  // key -> {key, model, id, options, handlers: Set<{handler}>, ack}, or for a collection
  // {key, kind: "collection", model, filter, options, requestId, rows, truncated, held, views, listeners, ack}
  #subs = new Map();
  #collectionRequests = new Map(); // request_id of a collection subscribe -> its entry (current or not)

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

  /** The instance subscriptions this client holds (acknowledged or awaiting their ack). */
  subscriptions() {
    return [...this.#subs.values()].filter((entry) => entry.kind !== "collection").map(({ model, id }) => ({ model, id }));
  }

  /**
   * Call `handler(frame)` with every `updated`, `deleted` and `revoked` frame of (model, id), and
   * with `{type: "snapshot", model, id, data}` when subscribed with `snapshot: true`. Options
   * (`actions`, `fields`, `snapshot`) must be the same for every handler of (model, id).
   * Returns an unsubscribe function (returning a promise of the `unsubscribed` frame, or of null
   * when nothing was sent); its `.ack` is the promise of the `subscribed` frame.
   */
  subscribe(model, id, handler, { actions, fields, snapshot = false } = {}) {
    if (typeof handler !== "function") throw new TypeError("subscribe(model, id, handler): handler must be a function");
    model = String(model).toLowerCase();
    id = String(id);
    const key = keyOf(model, id);
    const wire = wireOptions({ actions, fields, snapshot });
    if (this.#closed) {
      const unsubscribe = () => Promise.resolve(null);
      unsubscribe.ack = Promise.reject(new NotifyError("closed", "The client is closed.", { model, id }));
      unsubscribe.ack.catch(noop);
      return unsubscribe;
    }
    let entry = this.#subs.get(key);
    if (entry && !sameOptions(entry.options, wire)) {
      throw new TypeError(`subscribe(${model}, ${id}): already subscribed with other actions, fields or snapshot`);
    }
    if (!entry) {
      entry = { key, model, id, options: wire, handlers: new Set(), ack: null };
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

  /**
   * Follow the rows of `model` this user may see, matching `filter`: a LiveCollection with `rows`,
   * `truncated`, `ack`, `onChange(handler)` and `close()`. `snapshot` defaults to true.
   */
  collection(model, { filter, actions, fields, snapshot = true, onChange } = {}) {
    model = String(model).toLowerCase();
    if (filter !== undefined && (filter === null || typeof filter !== "object" || Array.isArray(filter))) {
      throw new TypeError("collection(model, {filter}): filter must be an object of field -> value");
    }
    const key = collectionKeyOf(model, filter);
    const wire = wireOptions({ actions, fields, snapshot });
    let entry = this.#subs.get(key);
    if (entry && !sameOptions(entry.options, wire)) {
      throw new TypeError(`collection(${model}): already followed with other actions, fields or snapshot`);
    }
    if (!entry) {
      entry = { key, kind: "collection", model, filter, options: wire, requestId: null, rows: new Map(), truncated: false };
      Object.assign(entry, { held: null, views: new Set(), listeners: new Set(), ack: null });
      if (this.#closed) {
        entry.ack = Promise.reject(new NotifyError("closed", "The client is closed.", { model, filter }));
        entry.ack.catch(noop);
      } else {
        this.#subs.set(key, entry);
        entry.ack = this.#subscribeOnWire(entry, false);
      }
    }
    const view = new LiveCollection(entry, (closing) => this.#releaseCollection(entry, closing));
    entry.views.add(view);
    if (onChange) view.onChange(onChange);
    return view;
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
    this.#collectionRequests.clear();
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
    if (entry.kind === "collection") return this.#subscribeCollectionOnWire(entry, resubscribe);
    return this.#request({ type: "subscribe", model: entry.model, id: entry.id, ...entry.options }, entry, resubscribe);
  }

  #send(request) {
    this.#ws.send(JSON.stringify(request.frame));
    const { ackTimeout } = this.#options;
    if (Number.isFinite(ackTimeout) && ackTimeout > 0) {
      request.timer = this.#setTimeout(() => {
        const { model, id, filter, request_id } = request.frame;
        const live = request.entry && this.#subs.get(request.entry.key) === request.entry;
        this.#settle(request_id, null, new NotifyError("timeout", `No answer within ${ackTimeout} ms.`, { model, id, filter }));
        // The server may still subscribe; tell it we do not want this one (answer ignored).
        if (live && this.#isOpen()) this.#ws.send(JSON.stringify(unsubscribeFrame(request.entry)));
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
    this.#collectionsOnNewSocket();
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
    if (type === "subscribed") {
      this.#subscribed(frame);
    } else if (type === "unsubscribed") {
      this.#settle(frame.request_id, frame, null);
    } else if (type === "error") {
      const request = this.#pending.get(frame.request_id);
      const error = new NotifyError(String(frame.code ?? "unknown"), String(frame.detail ?? ""), { ...request?.frame, frame });
      if (request) this.#settle(frame.request_id, null, error);
      else this.#report(error); // the server could not tell which request failed
    } else if (type === "welcome") {
      // Before the collection routing: a welcome is never a collection's, whatever it carries.
      this.#socketId = typeof frame.socket_id === "string" ? frame.socket_id : null;
    } else if (this.#collectionRequests.has(frame?.request_id)) {
      this.#collectionFrame(frame); // never an instance handler's, even when stale
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
    this.#call(entry.handlers, frame);
  }

  /** Call every handler of `listeners` with `event`; one that throws does not stop the others. */
  #call(listeners, event) {
    for (const { handler } of [...listeners]) {
      try {
        handler(event);
      } catch (error) {
        this.#report(error);
      }
    }
  }

  // --- snapshots and collections ------------------------------------------------------------

  /** A `subscribed` answer: settle its request, then hand its snapshot to the subscription. */
  #subscribed(frame) {
    const request = this.#pending.get(frame.request_id);
    this.#settle(frame.request_id, frame, null);
    const entry = request?.entry;
    if (!entry || this.#subs.get(entry.key) !== entry) return; // unsubscribed (or closed) since
    if (entry.kind === "collection") {
      if (entry.requestId === frame.request_id) this.#collectionSubscribed(entry, frame);
    } else if (entry.options.snapshot && "data" in frame) {
      this.#call(entry.handlers, { type: "snapshot", model: entry.model, id: entry.id, data: frame.data });
    }
  }

  #subscribeCollectionOnWire(entry, resubscribe) {
    const { model, filter } = entry;
    const frame = { type: "subscribe", model, ...(filter === undefined ? {} : { filter }), ...entry.options };
    const promise = this.#request(frame, entry, resubscribe);
    // #request numbered the frame: the subscription's frames will carry this request_id, and
    // those of any earlier subscribe of this entry are stale from now on.
    entry.requestId = this.#nextRequestId - 1;
    this.#collectionRequests.set(entry.requestId, entry);
    // Events that come before the snapshot are held, then applied over it in their order.
    entry.held = entry.options.snapshot ? [] : null;
    return promise;
  }

  #collectionSubscribed(entry, frame) {
    if (Array.isArray(frame.data)) {
      // Replace in place: a caller holding `rows` sees the fresh state; rows deleted while we
      // were offline disappear.
      entry.rows.clear();
      for (const row of frame.data) entry.rows.set(String(row?.id), row);
      entry.truncated = frame.truncated === true;
      const snapshot = { type: "snapshot", model: entry.model, rows: entry.rows, truncated: entry.truncated };
      if (entry.filter !== undefined) snapshot.filter = entry.filter;
      this.#call(entry.listeners, snapshot);
    }
    const held = entry.held ?? [];
    entry.held = null;
    for (const event of held) {
      if (this.#subs.get(entry.key) !== entry) return; // a callback closed it
      this.#applyCollectionEvent(entry, event);
    }
  }

  /** An event frame carrying a collection's request_id: applied if it is the current one. */
  #collectionFrame(frame) {
    const entry = this.#collectionRequests.get(frame.request_id);
    if (entry.requestId !== frame.request_id || this.#subs.get(entry.key) !== entry) return; // stale
    if (!COLLECTION_EVENT_TYPES.has(frame.type)) return; // a type this client does not know
    if (entry.held) entry.held.push(frame);
    else this.#applyCollectionEvent(entry, frame);
  }

  #applyCollectionEvent(entry, frame) {
    // Upserts: a row may arrive as created although the snapshot had it. Map.set keeps the
    // position of a row already there.
    if (frame.type === "deleted") entry.rows.delete(String(frame.id));
    else entry.rows.set(String(frame.id), frame.data);
    this.#call(entry.listeners, frame);
  }

  /** A view closed: the last one of (model, filter) unsubscribes. */
  #releaseCollection(entry, view) {
    entry.views.delete(view);
    if (entry.views.size > 0 || this.#subs.get(entry.key) !== entry) return Promise.resolve(null);
    this.#subs.delete(entry.key);
    const done = this.#request(unsubscribeFrame(entry));
    // Frames of this subscription may come until the server answers; they stay recognised
    // (and ignored) until then.
    const forget = () => {
      for (const [requestId, owner] of this.#collectionRequests) {
        if (owner === entry) this.#collectionRequests.delete(requestId);
      }
    };
    done.then(forget, forget);
    return done;
  }

  /** On a new socket: forget what came on the old one. */
  #collectionsOnNewSocket() {
    for (const [requestId, entry] of this.#collectionRequests) {
      const current = entry.requestId === requestId && this.#subs.get(entry.key) === entry;
      // A subscribe re-sent with its request_id: frames held from the old socket predate the
      // snapshot the new one will bring, and replaying them could bring back a deleted row.
      if (current && entry.held) entry.held = [];
      // No frame of a request_id that is neither current nor awaiting its answer can come now.
      if (!current && !this.#pending.has(requestId)) this.#collectionRequests.delete(requestId);
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
