// Every public name of notify-kit, used as a front-end project would; `tsc --noEmit` must accept it.
// Imported by package name (resolved through package.json "exports"/"types"), not by path.
// Lines marked @ts-expect-error must be rejected: if the .d.ts grew too loose to reject them, tsc
// reports the unused directive and the check fails.

import connectDefault, {
  type CollectionEvent,
  type CollectionFilter,
  type CollectionHandler,
  type CollectionOptions,
  type CollectionSnapshot,
  type CollectionSubscribedFrame,
  type CollectionUnsubscribedFrame,
  connect,
  type CreatedFrame,
  type DeletedFrame,
  type EchoMode,
  type ErrorFrame,
  type FilterValue,
  type InstanceSnapshot,
  type LiveCollection,
  type NotifyAction,
  NotifyClient,
  NotifyError,
  type NotifyErrorCode,
  type NotifyEvent,
  type NotifyHandler,
  type NotifyOptions,
  type NotifyStatus,
  type RevokedFrame,
  type SnapshotHandler,
  type SubscribedFrame,
  type SubscribeOptions,
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

// --- subscribe with options: actions, fields, snapshot ----------------------------------------

// Without snapshot (or snapshot: false) the handler is a plain NotifyHandler.
client.subscribe<Note>("notes.note", "Xk9vB2pQ", handler, { actions: ["updated"], fields: ["title"] });
client.subscribe<Note>("notes.note", "Xk9vB2pQ", handler, { snapshot: false });
// With snapshot: true the handler also gets the synthetic "snapshot" event, and ack its data.
const withSnapshot: SnapshotHandler<Note> = (event) => {
  if (event.type === "snapshot") {
    const snapshot: InstanceSnapshot<Note> = event;
    const title: string = snapshot.data.title;
    void title;
  }
};
const followed: Unsubscribe<Note> = client.subscribe<Note>("notes.note", "Xk9vB2pQ", withSnapshot, { snapshot: true });
async function instanceSnapshot(): Promise<void> {
  const ack: SubscribedFrame<Note> = await followed.ack;
  const title: string | undefined = ack.data?.title;
  void title;
}
// A snapshot flag only known at run time: the handler must expect the snapshot event too.
const subscribeOptions: SubscribeOptions<Note> = { actions: ["updated"], fields: ["title"], snapshot: Math.random() > 0.5 };
client.subscribe<Note>("notes.note", "Xk9vB2pQ", withSnapshot, subscribeOptions);

// --- collections -------------------------------------------------------------------------------

const action: NotifyAction = "created";
const archived: FilterValue = false;
const filter: CollectionFilter = { archived, owner: "Xk9vB2pQ" };
const onNotes: CollectionHandler<Note> = (event: CollectionEvent<Note>) => {
  switch (event.type) {
    case "snapshot": {
      const snapshot: CollectionSnapshot<Note> = event;
      const rows: ReadonlyMap<string, Note> = snapshot.rows;
      const truncated: boolean = snapshot.truncated;
      const sameFilter: CollectionFilter | undefined = snapshot.filter;
      void [rows, truncated, sameFilter];
      break;
    }
    case "created": {
      const frame: CreatedFrame<Note> = event;
      const requestId: number | undefined = frame.request_id;
      const marked: true | undefined = frame.echo; // with echo: "mark", as on updated and deleted
      void [frame.data.title, requestId, marked];
      break;
    }
    case "updated": {
      const frame: UpdatedFrame<Note> = event;
      void [frame.data.title, frame.changed, frame.request_id];
      break;
    }
    case "deleted": {
      const frame: DeletedFrame = event;
      void [frame.id, frame.request_id];
      break;
    }
    default: {
      const never: never = event;
      void never;
    }
  }
};
const collectionOptions: CollectionOptions<Note> = {
  filter,
  actions: [action, "deleted"],
  fields: ["id", "title"],
  snapshot: true,
  onChange: onNotes,
};
const notes: LiveCollection<Note> = client.collection<Note>("notes.note", collectionOptions);
const everything: LiveCollection = client.collection("notes.note");
const removeListener: () => void = notes.onChange(onNotes);

async function followCollection(): Promise<void> {
  const ack: CollectionSubscribedFrame<Note> = await notes.ack;
  const firstRows: Note[] | undefined = ack.data;
  const cut: boolean | undefined = ack.truncated;
  const model: string = notes.model;
  const noteFilter: CollectionFilter | undefined = notes.filter;
  const titles: string[] = [...notes.rows.values()].map((note) => note.title);
  const truncated: boolean = notes.truncated;
  const untyped: unknown = everything.rows.get("Xk9vB2pQ")?.["title"];
  removeListener();
  const answer: CollectionUnsubscribedFrame | null = await notes.close();
  void [firstRows, cut, model, noteFilter, titles, truncated, untyped, answer?.filter];
}

// --- NotifyError and webSocketUrl ---------------------------------------------------------------

const timeout = new NotifyError("timeout", "No answer within 10 ms.", { model: "notes.note", id: "Xk9vB2pQ" });
const fromServer = new NotifyError("not_found", "No such object.", {
  frame: { type: "error", code: "not_found", detail: "No such object.", request_id: 7 },
});
const custom = new NotifyError("some_future_code", "Codes are open-ended.");
const ofCollection = new NotifyError("invalid", "Unknown filter field.", { model: "notes.note", filter: { colour: "red" } });
const failedFilter: CollectionFilter | undefined = ofCollection.filter;
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
// @ts-expect-error: with snapshot: true a handler that does not expect the snapshot event is rejected
client.subscribe<Note>("notes.note", "x", (event: NotifyEvent<Note>) => void event, { snapshot: true });
// @ts-expect-error: "revoked" is not an action one can ask for
client.subscribe("notes.note", "x", handler, { actions: ["revoked"] });
// @ts-expect-error: fields are the serializer's (here Note's) names
client.collection<Note>("notes.note", { fields: ["body"] });
// @ts-expect-error: filter values are JSON scalars
client.collection("notes.note", { filter: { owner: { id: 1 } } });
// @ts-expect-error: rows are read-only for the caller
notes.rows.set("x", { id: "x", title: "" });

void [socketId, save, direct, headerName, welcome];
void [other, third, status, held, lifecycle, fromServer, custom, asError, url, here, socketLike, badStatus];
void [instanceSnapshot, followCollection, failedFilter];
