// Every public name of notify-kit, used as a front-end project would; `tsc --noEmit` must accept it.
// Imported by package name (resolved through package.json "exports"/"types"), not by path.
// Lines marked @ts-expect-error must be rejected: if the .d.ts grew too loose to reject them, tsc
// reports the unused directive and the check fails.

import connectDefault, {
  connect,
  type DeletedFrame,
  type EchoMode,
  type ErrorFrame,
  NotifyClient,
  NotifyError,
  type NotifyErrorCode,
  type NotifyEvent,
  type NotifyHandler,
  type NotifyOptions,
  type NotifyStatus,
  type RevokedFrame,
  type SubscribedFrame,
  type UnsubscribedFrame,
  type Unsubscribe,
  type UpdatedFrame,
  type WebSocketLike,
  type WelcomeFrame,
  SOCKET_ID_HEADER,
  webSocketUrl,
} from "notify-kit";

/** Compile-time equality of two types. */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function assertType<T extends true>(): T | void {}

interface Note {
  id: string;
  title: string;
}

// --- options: the browser's own WebSocket and timers fit the injectable ones ---------------------

const statuses: NotifyStatus[] = [];
const options: NotifyOptions = {
  WebSocket: globalThis.WebSocket,
  minDelay: 500,
  maxDelay: 30_000,
  ackTimeout: Infinity,
  onStatus: (status) => statuses.push(status),
  onError: (error) => console.error(error),
  setTimeout: (callback, ms) => globalThis.setTimeout(callback, ms),
  clearTimeout: (timer) => globalThis.clearTimeout(timer),
  random: Math.random,
  location: globalThis.location,
  echo: "skip",
};

/** A hand-made socket (as in the unit tests) is a WebSocketLike too. */
class FakeSocket implements WebSocketLike {
  readyState = 0;
  onopen: WebSocketLike["onopen"] = null;
  onmessage: WebSocketLike["onmessage"] = null;
  onclose: WebSocketLike["onclose"] = null;
  onerror: WebSocketLike["onerror"] = null;
  constructor(readonly url: string) {}
  send(data: string): void {
    void data;
  }
  close(): void {
    this.readyState = 3;
  }
}
const socketLike: WebSocketLike = new globalThis.WebSocket("ws://example.test/");

// --- connect, the default export, the class ----------------------------------------------------

const client: NotifyClient = connect("/ws/notifications/", options);
const other = connectDefault(new URL("wss://example.test/ws/notifications/"), { WebSocket: FakeSocket });
const third = new NotifyClient("/ws/notifications/");
const status: NotifyStatus = client.status;
const held: Array<{ model: string; id: string }> = client.subscriptions();
assertType<Equal<typeof connectDefault, typeof connect>>();

// --- own echoes: the socket id, the headers for API calls, the marked frames --------------------

const socketId: string | null = client.socketId;
const mode: EchoMode = "mark";
const marking = connect("/ws/notifications/", { echo: mode });
async function save(): Promise<Response> {
  return fetch("/api/notes/1/", { method: "PATCH", headers: { ...client.headers(), "Content-Type": "application/json" } });
}
const direct: HeadersInit = client.headers();
const headerName: "X-Notify-Socket-ID" = SOCKET_ID_HEADER;
const welcome: WelcomeFrame = { type: "welcome", socket_id: "opaque" };
marking.subscribe<Note>("notes.note", "Xk9vB2pQ", (event) => {
  if (event.type !== "revoked") {
    const mine: true | undefined = event.echo;
    void mine;
  }
});

// --- subscribe: typed data, narrowing on `type`, the ack, the unsubscribe -----------------------

const handler: NotifyHandler<Note> = (event: NotifyEvent<Note>) => {
  switch (event.type) {
    case "updated": {
      const frame: UpdatedFrame<Note> = event;
      const title: string = frame.data.title;
      const changed: string[] = frame.changed;
      const coalesced: number | undefined = frame.coalesced;
      void [title, changed, coalesced];
      break;
    }
    case "deleted": {
      const frame: DeletedFrame = event;
      void frame.id;
      break;
    }
    case "revoked": {
      const frame: RevokedFrame = event;
      void frame.model;
      break;
    }
    default: {
      const never: never = event;
      void never;
    }
  }
};
const unsubscribe: Unsubscribe = client.subscribe<Note>("notes.note", "Xk9vB2pQ", handler);
// Without a type argument, data is a plain record.
client.subscribe("notes.note", "Xk9vB2pQ", (event) => {
  if (event.type === "updated") {
    assertType<Equal<typeof event.data, Record<string, unknown>>>();
  }
});

async function lifecycle(): Promise<void> {
  try {
    const ack: SubscribedFrame = await unsubscribe.ack;
    const requestId: number | undefined = ack.request_id;
    void requestId;
  } catch (error) {
    if (error instanceof NotifyError) {
      const code: NotifyErrorCode = error.code;
      const detail: string = error.detail;
      const model: string | undefined = error.model;
      const id: string | undefined = error.id;
      const frame: ErrorFrame | undefined = error.frame;
      const name: "NotifyError" = error.name;
      void [code, detail, model, id, frame?.request_id, name, error.message];
    }
  }
  const answer: UnsubscribedFrame | null = await unsubscribe();
  void answer?.request_id;
  client.close();
}

// --- NotifyError and webSocketUrl ---------------------------------------------------------------

const timeout = new NotifyError("timeout", "No answer within 10 ms.", { model: "notes.note", id: "Xk9vB2pQ" });
const fromServer = new NotifyError("not_found", "No such object.", {
  frame: { type: "error", code: "not_found", detail: "No such object.", request_id: 7 },
});
const custom = new NotifyError("some_future_code", "Codes are open-ended.");
const asError: Error = timeout;
const url: string = webSocketUrl("/ws/notifications/", { href: "https://example.test/page" });
const here: string = webSocketUrl(new URL("ws://example.test/"));

// --- what the declarations must reject -----------------------------------------------------------

// @ts-expect-error: the model label is a string
client.subscribe(42, "Xk9vB2pQ", handler);
// @ts-expect-error: a handler is required
client.subscribe("notes.note", "Xk9vB2pQ");
// @ts-expect-error: "open" is not a status
const badStatus: NotifyStatus = "open";
// @ts-expect-error: status is read-only
client.status = "closed";
// @ts-expect-error: ackTimeout is a number of milliseconds
connect("/ws/", { ackTimeout: "10s" });
// @ts-expect-error: unknown options are rejected (catches typos such as maxDelays)
connect("/ws/", { maxDelays: 1000 });
// @ts-expect-error: echo is "skip", "mark" or "all"
connect("/ws/", { echo: "none" });
// @ts-expect-error: socketId is read-only
client.socketId = "forged";
// @ts-expect-error: typed data: Note has no `body`
client.subscribe<Note>("notes.note", "x", (event) => event.type === "updated" && event.data.body);

void [socketId, save, direct, headerName, welcome];
void [other, third, status, held, lifecycle, fromServer, custom, asError, url, here, socketLike, badStatus];
