// Unit tests of notify-kit.js: `node --test tests/js/` (Node 20+, no packages).
// A fake WebSocket, a fake clock and a fixed random() make every test fast and deterministic.

import assert from "node:assert/strict";
import { test } from "node:test";

import connectDefault, { connect, NotifyClient, NotifyError, SOCKET_ID_HEADER, webSocketUrl } from "../../notify_kit/static/notify_kit/notify-kit.js";

/** A fresh fake WebSocket class per test, recording its instances. */
function fakeWebSocketClass() {
  return class FakeWebSocket {
    static instances = [];
    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.sent = [];
      this.closeCalls = 0;
      FakeWebSocket.instances.push(this);
    }
    send(text) {
      if (this.readyState !== 1) throw new Error("InvalidStateError: not open");
      this.sent.push(JSON.parse(text));
    }
    close() {
      this.closeCalls++;
      if (this.readyState === 3) return;
      this.readyState = 3;
      this.onclose?.({ code: 1005 }); // synchronously, as Node's undici may: the client must cope
    }
    // Test helpers: what the server or the network does.
    open() {
      this.readyState = 1;
      this.onopen?.({});
    }
    receive(frame) {
      this.onmessage?.({ data: typeof frame === "string" ? frame : JSON.stringify(frame) });
    }
    drop() {
      this.readyState = 3;
      this.onclose?.({ code: 1006 });
    }
    fail() {
      this.onerror?.({}); // an error without the close event that browsers send after it
    }
  };
}

/** A manual clock: timers run only when the test advances time. */
function fakeClock() {
  let now = 0;
  let seq = 0;
  const timers = new Map();
  return {
    delays: [], // every delay asked for, in order
    setTimeout(fn, ms) {
      this.delays.push(ms);
      timers.set(++seq, { fn, at: now + ms });
      return seq;
    },
    clearTimeout(id) {
      timers.delete(id);
    },
    get size() {
      return timers.size;
    },
    advance(ms) {
      const end = now + ms;
      for (;;) {
        const due = [...timers].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
        if (!due) break;
        timers.delete(due[0]);
        now = due[1].at;
        due[1].fn();
      }
      now = end;
    },
  };
}

/** A client wired to fakes; returns the client and its helpers. */
function setup(options = {}) {
  const WebSocket = fakeWebSocketClass();
  const clock = fakeClock();
  const statuses = [];
  const errors = [];
  const client = connect("/ws/notifications/", {
    WebSocket,
    location: { href: "https://example.com/notes/1/" },
    setTimeout: (fn, ms) => clock.setTimeout(fn, ms),
    clearTimeout: (id) => clock.clearTimeout(id),
    random: () => 0.5,
    minDelay: 100,
    maxDelay: 1000,
    ackTimeout: 5000,
    onStatus: (status) => statuses.push(status),
    onError: (error) => errors.push(error),
    ...options,
  });
  const socket = () => WebSocket.instances.at(-1);
  return { client, WebSocket, clock, statuses, errors, socket };
}

const flush = () => new Promise((resolve) => setImmediate(resolve));
const NOTE = "notes.note";
const ID = "Xk9vB2pQ";

/** Settle a promise into {value} or {error}, without awaiting forever. */
async function outcome(promise) {
  let result = { pending: true };
  promise.then(
    (value) => (result = { value }),
    (error) => (result = { error }),
  );
  await flush();
  return result;
}

test("exports connect as named and default export, and the NotifyClient and NotifyError classes", () => {
  assert.equal(connectDefault, connect);
  const { client } = setup();
  assert.ok(client instanceof NotifyClient);
  assert.ok(new NotifyError("limit", "x") instanceof Error);
});

test("builds ws:// and wss:// URLs from the page location", () => {
  assert.equal(webSocketUrl("/ws/notifications/", { href: "http://localhost:8000/a/b" }), "ws://localhost:8000/ws/notifications/");
  assert.equal(webSocketUrl("/ws/notifications/", { href: "https://example.com/a" }), "wss://example.com/ws/notifications/");
  assert.equal(webSocketUrl("ws/", { href: "https://example.com/app/page" }), "wss://example.com/app/ws/");
  assert.equal(webSocketUrl("wss://other.example/ws/", { href: "http://localhost/" }), "wss://other.example/ws/");
  const { socket } = setup();
  assert.equal(socket().url, "wss://example.com/ws/notifications/?echo=skip");
});

// --- own echoes ----------------------------------------------------------------------------------

test("asks for a socket id with ?echo=skip by default, ?echo=mark on request, nothing with echo 'all'", () => {
  assert.equal(setup().socket().url, "wss://example.com/ws/notifications/?echo=skip");
  assert.equal(setup({ echo: "mark" }).socket().url, "wss://example.com/ws/notifications/?echo=mark");
  assert.equal(setup({ echo: "all" }).socket().url, "wss://example.com/ws/notifications/");
  const { WebSocket } = setup({ echo: undefined });
  assert.equal(WebSocket.instances[0].url, "wss://example.com/ws/notifications/?echo=skip");
  assert.throws(() => setup({ echo: "none" }), TypeError);
});

test("the query string of the path is kept beside echo", () => {
  const WebSocket = fakeWebSocketClass();
  connect("/ws/?v=2", { WebSocket, location: { href: "http://h/" }, echo: "mark" });
  assert.equal(WebSocket.instances[0].url, "ws://h/ws/?v=2&echo=mark");
});

test("the welcome frame sets socketId and headers(); a drop clears them until the next welcome", () => {
  const { client, socket, clock, errors } = setup();
  assert.equal(client.socketId, null);
  assert.deepEqual(client.headers(), {});
  socket().open();
  socket().receive({ type: "welcome", socket_id: "abcdefghijklmnopqrstuv" });
  assert.equal(client.socketId, "abcdefghijklmnopqrstuv");
  assert.deepEqual(client.headers(), { "X-Notify-Socket-ID": "abcdefghijklmnopqrstuv" });
  assert.equal(SOCKET_ID_HEADER, "X-Notify-Socket-ID");

  socket().drop();
  assert.equal(client.socketId, null); // an id of a dead socket would name nobody
  assert.deepEqual(client.headers(), {});
  clock.advance(1000);
  socket().open();
  socket().receive({ type: "welcome", socket_id: "second-socket-id-000000" });
  assert.equal(client.socketId, "second-socket-id-000000");
  client.close();
  assert.equal(client.socketId, null);
  assert.deepEqual(errors, []);
});

test("a welcome frame without a string socket_id leaves no id", () => {
  const { client, socket, errors } = setup();
  socket().open();
  socket().receive({ type: "welcome", socket_id: "valid-socket-id-0000000" });
  socket().receive({ type: "welcome", socket_id: 42 });
  assert.equal(client.socketId, null);
  assert.deepEqual(client.headers(), {});
  assert.deepEqual(errors, []);
});

test("the welcome frame settles no request and reaches no handler", async () => {
  const { client, socket } = setup();
  const seen = [];
  const unsubscribe = client.subscribe(NOTE, ID, (event) => seen.push(event));
  socket().open();
  socket().receive({ type: "welcome", socket_id: "abcdefghijklmnopqrstuv", request_id: 1, model: NOTE, id: ID });
  assert.deepEqual(await outcome(unsubscribe.ack), { pending: true });
  assert.deepEqual(seen, []);
  socket().receive({ type: "subscribed", model: NOTE, id: ID, request_id: 1 });
  assert.equal((await outcome(unsubscribe.ack)).value.type, "subscribed");
});

test("a marked echo reaches the handler with echo: true", () => {
  const { client, socket } = setup({ echo: "mark" });
  const seen = [];
  client.subscribe(NOTE, ID, (event) => seen.push(event));
  socket().open();
  const frame = { type: "updated", model: NOTE, id: ID, data: { title: "t" }, changed: ["title"], echo: true };
  socket().receive(frame);
  assert.deepEqual(seen, [frame]);
});

test("status goes connecting -> connected, reported to onStatus and the getter", () => {
  const { client, statuses, socket } = setup();
  assert.equal(client.status, "connecting");
  socket().open();
  assert.equal(client.status, "connected");
  assert.deepEqual(statuses, ["connecting", "connected"]);
});

test("requests made before the socket opens are queued and sent on open, with lower-case model and incrementing request_id", () => {
  const { client, socket } = setup();
  client.subscribe("Notes.Note", ID, () => {});
  client.subscribe(NOTE, "other", () => {});
  assert.deepEqual(socket().sent, []);
  socket().open();
  assert.deepEqual(socket().sent, [
    { type: "subscribe", model: NOTE, id: ID, request_id: 1 },
    { type: "subscribe", model: NOTE, id: "other", request_id: 2 },
  ]);
  client.subscribe(NOTE, "third", () => {});
  assert.deepEqual(socket().sent.at(-1), { type: "subscribe", model: NOTE, id: "third", request_id: 3 });
});

test("ack resolves with the subscribed frame matched by request_id, whatever the order of answers", async () => {
  const { client, socket } = setup();
  socket().open();
  const a = client.subscribe(NOTE, "a", () => {});
  const b = client.subscribe(NOTE, "b", () => {});
  const frameB = { type: "subscribed", model: NOTE, id: "b", request_id: 2 };
  const frameA = { type: "subscribed", model: NOTE, id: "a", request_id: 1 };
  socket().receive(frameB);
  socket().receive(frameA);
  assert.deepEqual(await a.ack, frameA);
  assert.deepEqual(await b.ack, frameB);
});

test("an error answer rejects ack with code and detail and drops the subscription (not resubscribed after reconnect)", async () => {
  const { client, socket, clock, errors } = setup();
  socket().open();
  const unsubscribe = client.subscribe(NOTE, ID, () => {});
  socket().receive({ type: "error", code: "not_found", detail: "No such object.", request_id: 1 });
  const error = await unsubscribe.ack.then(() => assert.fail("ack resolved"), (e) => e);
  assert.ok(error instanceof NotifyError);
  assert.equal(error.code, "not_found");
  assert.equal(error.detail, "No such object.");
  assert.equal(error.model, NOTE);
  assert.equal(error.id, ID);
  assert.deepEqual(client.subscriptions(), []);
  assert.deepEqual(errors, [], "the rejected ack is the report, not onError");
  socket().drop();
  clock.advance(1000);
  socket().open();
  assert.deepEqual(socket().sent, []);
});

test("several handlers of one (model, id) share one subscribe frame; only the last unsubscribe sends a frame", async () => {
  const { client, socket } = setup();
  socket().open();
  const seen = [];
  const first = client.subscribe(NOTE, ID, (e) => seen.push(["first", e.type]));
  const second = client.subscribe("NOTES.NOTE", ID, (e) => seen.push(["second", e.type]));
  assert.equal(socket().sent.length, 1);
  assert.equal(first.ack, second.ack);
  socket().receive({ type: "subscribed", model: NOTE, id: ID, request_id: 1 });
  socket().receive({ type: "updated", model: NOTE, id: ID, data: {}, changed: [] });
  assert.deepEqual(seen, [["first", "updated"], ["second", "updated"]]);

  const firstDone = first();
  assert.equal(socket().sent.length, 1, "a handler remains: no unsubscribe frame");
  assert.equal(await firstDone, null);
  const again = first();
  assert.equal(socket().sent.length, 1, "calling it twice does nothing");
  assert.equal(await again, null);
  assert.deepEqual(client.subscriptions(), [{ model: NOTE, id: ID }]);

  const done = second();
  assert.deepEqual(socket().sent.at(-1), { type: "unsubscribe", model: NOTE, id: ID, request_id: 2 });
  assert.deepEqual(client.subscriptions(), []);
  const frame = { type: "unsubscribed", model: NOTE, id: ID, request_id: 2 };
  socket().receive(frame);
  assert.deepEqual(await done, frame);
});

test("the same function subscribed twice needs two unsubscribes", () => {
  const { client, socket } = setup();
  socket().open();
  const handler = () => {};
  const one = client.subscribe(NOTE, ID, handler);
  client.subscribe(NOTE, ID, handler);
  one();
  assert.equal(socket().sent.length, 1);
  assert.deepEqual(client.subscriptions(), [{ model: NOTE, id: ID }]);
});

test("updated events reach the handler with the whole frame; events of other objects do not", () => {
  const { client, socket } = setup();
  socket().open();
  const seen = [];
  client.subscribe(NOTE, ID, (event) => seen.push(event));
  const frame = { type: "updated", model: NOTE, id: ID, data: { title: "x" }, changed: ["title"] };
  socket().receive({ type: "updated", model: NOTE, id: "other", data: {}, changed: [] });
  socket().receive({ type: "updated", model: "notes.other", id: ID, data: {}, changed: [] });
  socket().receive(frame);
  assert.deepEqual(seen, [frame]);
});

test("a throwing handler does not stop the other handlers and is reported to onError", () => {
  const { client, socket, errors } = setup();
  socket().open();
  const boom = new Error("boom");
  const seen = [];
  client.subscribe(NOTE, ID, () => {
    throw boom;
  });
  client.subscribe(NOTE, ID, (e) => seen.push(e.type));
  socket().receive({ type: "updated", model: NOTE, id: ID, data: {}, changed: [] });
  assert.deepEqual(seen, ["updated"]);
  assert.deepEqual(errors, [boom]);
});

for (const type of ["deleted", "revoked"]) {
  test(`${type}: handlers are called, then the subscription is forgotten and not resubscribed after reconnect`, () => {
    const { client, socket, clock } = setup();
    socket().open();
    const seen = [];
    client.subscribe(NOTE, ID, (e) => seen.push(e.type));
    client.subscribe(NOTE, "kept", () => {});
    socket().receive({ type: "subscribed", model: NOTE, id: ID, request_id: 1 });
    socket().receive({ type: "subscribed", model: NOTE, id: "kept", request_id: 2 });
    socket().receive({ type, model: NOTE, id: ID });
    assert.deepEqual(seen, [type]);
    assert.deepEqual(client.subscriptions(), [{ model: NOTE, id: "kept" }]);
    socket().receive({ type: "updated", model: NOTE, id: ID, data: {}, changed: [] });
    assert.deepEqual(seen, [type], "later events of a forgotten subscription are ignored");
    socket().drop();
    clock.advance(1000);
    socket().open();
    assert.deepEqual(socket().sent, [{ type: "subscribe", model: NOTE, id: "kept", request_id: 3 }]);
  });
}

test("after an unrequested close: status reconnecting, then every live subscription is subscribed again", async () => {
  const { client, socket, clock, statuses, WebSocket } = setup();
  socket().open();
  const seen = [];
  client.subscribe(NOTE, "a", (e) => seen.push(e.id));
  client.subscribe("Notes.Note", "b", (e) => seen.push(e.id));
  socket().receive({ type: "subscribed", model: NOTE, id: "a", request_id: 1 });
  socket().receive({ type: "subscribed", model: NOTE, id: "b", request_id: 2 });
  socket().drop();
  assert.equal(client.status, "reconnecting");
  assert.equal(WebSocket.instances.length, 1, "waits before reconnecting");
  clock.advance(1000);
  assert.equal(WebSocket.instances.length, 2);
  assert.deepEqual(socket().sent, [], "nothing is sent before the new socket opens");
  socket().open();
  assert.equal(client.status, "connected");
  assert.deepEqual(statuses, ["connecting", "connected", "reconnecting", "connected"]);
  assert.deepEqual(socket().sent, [
    { type: "subscribe", model: NOTE, id: "a", request_id: 3 },
    { type: "subscribe", model: NOTE, id: "b", request_id: 4 },
  ]);
  socket().receive({ type: "updated", model: NOTE, id: "b", data: {}, changed: [] });
  assert.deepEqual(seen, ["b"]);
});

test("an error event without a close event also reconnects, once", () => {
  const { client, socket, clock, WebSocket } = setup();
  socket().open();
  client.subscribe(NOTE, ID, () => {});
  const first = socket();
  first.fail();
  assert.equal(client.status, "reconnecting");
  assert.equal(first.closeCalls, 1, "the failed socket is closed");
  first.drop(); // a close event after all: must not schedule a second reconnect
  assert.equal(clock.size, 1);
  clock.advance(1000);
  assert.equal(WebSocket.instances.length, 2);
  socket().open();
  assert.deepEqual(socket().sent, [{ type: "subscribe", model: NOTE, id: ID, request_id: 1 }]);
});

test("reconnect delays: exponential backoff with full jitter, capped, counter reset after a successful open", () => {
  let r = 0.5;
  const { socket, clock } = setup({ random: () => r, ackTimeout: 0 });
  socket().open();
  const delays = () => clock.delays.splice(0);
  for (let i = 0; i < 6; i++) {
    socket().drop();
    clock.advance(10_000);
  }
  assert.deepEqual(delays(), [50, 100, 200, 400, 500, 500]); // 0.5 * min(1000, 100 * 2 ** n)
  socket().open();
  r = 0.25;
  socket().drop();
  assert.deepEqual(delays(), [25], "attempt counter reset by the open; random() scales the delay");
  assert.equal(clock.size, 1);
});

test("a request whose answer was lost in a drop is sent again on the next socket and its promise settles", async () => {
  const { client, socket, clock } = setup();
  socket().open();
  const unsubscribe = client.subscribe(NOTE, ID, () => {});
  assert.equal(socket().sent.length, 1);
  socket().drop();
  clock.advance(1000);
  socket().open();
  assert.deepEqual(socket().sent, [{ type: "subscribe", model: NOTE, id: ID, request_id: 1 }]);
  const frame = { type: "subscribed", model: NOTE, id: ID, request_id: 1 };
  socket().receive(frame);
  assert.deepEqual(await unsubscribe.ack, frame);
});

test("requests made while reconnecting are queued and sent in order once the socket opens", async () => {
  const { client, socket, clock } = setup();
  socket().open();
  const gone = client.subscribe(NOTE, "gone", () => {});
  socket().receive({ type: "subscribed", model: NOTE, id: "gone", request_id: 1 });
  socket().drop();
  const done = gone();
  client.subscribe(NOTE, "new", () => {});
  clock.advance(1000);
  socket().open();
  assert.deepEqual(socket().sent, [
    { type: "unsubscribe", model: NOTE, id: "gone", request_id: 2 },
    { type: "subscribe", model: NOTE, id: "new", request_id: 3 },
  ]);
  socket().receive({ type: "unsubscribed", model: NOTE, id: "gone", request_id: 2 });
  assert.equal((await done).type, "unsubscribed");
});

test("a request without an answer rejects with code 'timeout' after ackTimeout and drops the subscription", async () => {
  const { client, socket, clock } = setup();
  socket().open();
  const unsubscribe = client.subscribe(NOTE, ID, () => {});
  clock.advance(4999);
  assert.deepEqual(await outcome(unsubscribe.ack), { pending: true });
  clock.advance(1);
  const { error } = await outcome(unsubscribe.ack);
  assert.equal(error?.code, "timeout");
  assert.deepEqual(client.subscriptions(), []);
  assert.deepEqual(socket().sent.at(-1), { type: "unsubscribe", model: NOTE, id: ID }, "tells the server it is not wanted");
  socket().receive({ type: "subscribed", model: NOTE, id: ID, request_id: 1 }); // late: ignored
  assert.deepEqual(client.subscriptions(), []);
});

test("the timeout of a superseded subscribe sends no unsubscribe for the newer subscription", () => {
  const { client, socket, clock } = setup();
  socket().open();
  client.subscribe(NOTE, ID, () => {})(); // subscribe (1), unsubscribe (2) at once
  clock.advance(1000);
  client.subscribe(NOTE, ID, () => {}); // subscribe (3)
  socket().receive({ type: "unsubscribed", model: NOTE, id: ID, request_id: 2 });
  clock.advance(4000); // request 1 times out
  assert.deepEqual(socket().sent.map((f) => [f.type, f.request_id]), [["subscribe", 1], ["unsubscribe", 2], ["subscribe", 3]]);
  assert.deepEqual(client.subscriptions(), [{ model: NOTE, id: ID }]);
});

test("the ack timeout restarts on the new socket after a drop", async () => {
  const { client, socket, clock } = setup();
  socket().open();
  const unsubscribe = client.subscribe(NOTE, ID, () => {});
  clock.advance(4000);
  socket().drop();
  clock.advance(1000); // reconnect timer (50 ms) fires; the old ack timer must not
  socket().open();
  clock.advance(4000);
  assert.deepEqual(await outcome(unsubscribe.ack), { pending: true });
  clock.advance(1000);
  assert.equal((await outcome(unsubscribe.ack)).error?.code, "timeout");
});

test("close(): status closed, socket closed, no reconnect, pending promises reject with code 'closed'", async () => {
  const { client, socket, clock, statuses, WebSocket } = setup();
  socket().open();
  const unsubscribe = client.subscribe(NOTE, ID, () => {});
  client.close();
  assert.equal(client.status, "closed");
  assert.equal(statuses.at(-1), "closed");
  assert.equal(socket().closeCalls, 1);
  assert.equal((await outcome(unsubscribe.ack)).error?.code, "closed");
  assert.deepEqual(client.subscriptions(), []);
  socket().drop(); // a late close event of the old socket
  clock.advance(60_000);
  assert.equal(WebSocket.instances.length, 1);
  assert.equal(client.status, "closed");
  assert.equal((await outcome(client.subscribe(NOTE, ID, () => {}).ack)).error?.code, "closed");
});

test("close() while waiting to reconnect cancels the reconnect", () => {
  const { client, socket, clock, WebSocket } = setup();
  socket().open();
  socket().drop();
  client.close();
  clock.advance(60_000);
  assert.equal(WebSocket.instances.length, 1);
  assert.equal(client.status, "closed");
});

test("frames that are not JSON, not objects or of unknown type are ignored without throwing", () => {
  const { client, socket, errors } = setup();
  socket().open();
  const seen = [];
  client.subscribe(NOTE, ID, (e) => seen.push(e));
  for (const frame of ["not json{", "null", "42", '"text"', "[]", { type: "mystery", model: NOTE, id: ID }, { model: NOTE, id: ID }]) {
    assert.doesNotThrow(() => socket().receive(frame));
  }
  assert.deepEqual(seen, []);
  assert.deepEqual(errors, []);
  assert.deepEqual(client.subscriptions(), [{ model: NOTE, id: ID }]);
});

test("an error frame without a request_id is reported to onError and settles nothing", async () => {
  const { client, socket, errors } = setup();
  socket().open();
  const unsubscribe = client.subscribe(NOTE, ID, () => {});
  socket().receive({ type: "error", code: "invalid", detail: "Not valid JSON." });
  assert.equal(errors.length, 1);
  assert.equal(errors[0].code, "invalid");
  assert.equal(errors[0].detail, "Not valid JSON.");
  assert.deepEqual(await outcome(unsubscribe.ack), { pending: true });
});

test("a failed re-subscription after reconnect is reported to onError and drops that subscription", () => {
  const { client, socket, clock, errors } = setup();
  socket().open();
  client.subscribe(NOTE, ID, () => {});
  socket().receive({ type: "subscribed", model: NOTE, id: ID, request_id: 1 });
  socket().drop();
  clock.advance(1000);
  socket().open();
  socket().receive({ type: "error", code: "not_found", detail: "gone", request_id: 2 });
  assert.equal(errors[0]?.code, "not_found");
  assert.equal(errors[0]?.id, ID);
  assert.deepEqual(client.subscriptions(), []);
});

test("a stale error for an earlier subscribe does not drop a newer subscription of the same object", () => {
  const { client, socket } = setup();
  socket().open();
  const first = client.subscribe(NOTE, ID, () => {});
  first(); // unsubscribe before the ack
  client.subscribe(NOTE, ID, () => {});
  assert.deepEqual(socket().sent.map((f) => [f.type, f.request_id]), [["subscribe", 1], ["unsubscribe", 2], ["subscribe", 3]]);
  socket().receive({ type: "error", code: "rate_limited", detail: "slow down", request_id: 1 });
  assert.deepEqual(client.subscriptions(), [{ model: NOTE, id: ID }]);
});

test("a handler may subscribe again from inside a deleted event", () => {
  const { client, socket } = setup();
  socket().open();
  client.subscribe(NOTE, ID, () => client.subscribe(NOTE, ID, () => {}));
  socket().receive({ type: "deleted", model: NOTE, id: ID });
  assert.deepEqual(client.subscriptions(), [{ model: NOTE, id: ID }]);
  assert.deepEqual(socket().sent.at(-1), { type: "subscribe", model: NOTE, id: ID, request_id: 2 });
});

// --- instance subscriptions with options --------------------------------------------------------

test("subscribe's 4th argument: actions, fields and snapshot go on the wire; without it the frame is unchanged", () => {
  const { client, socket } = setup();
  socket().open();
  client.subscribe(NOTE, "plain", () => {}, {});
  client.subscribe(NOTE, ID, () => {}, { actions: ["updated"], fields: ["title"], snapshot: true });
  assert.deepEqual(socket().sent, [
    { type: "subscribe", model: NOTE, id: "plain", request_id: 1 },
    { type: "subscribe", model: NOTE, id: ID, actions: ["updated"], fields: ["title"], snapshot: true, request_id: 2 },
  ]);
});

test("snapshot: true: ack carries the object, handlers get a snapshot event, and again after a reconnect", async () => {
  const { client, socket, clock } = setup();
  socket().open();
  const seen = [];
  const unsubscribe = client.subscribe(NOTE, ID, (event) => seen.push(event), { snapshot: true, fields: ["title"] });
  const frame = { type: "subscribed", model: NOTE, id: ID, request_id: 1, data: { id: ID, title: "a" } };
  socket().receive(frame);
  assert.deepEqual(await unsubscribe.ack, frame);
  assert.deepEqual(seen, [{ type: "snapshot", model: NOTE, id: ID, data: { id: ID, title: "a" } }]);
  socket().drop();
  clock.advance(1000);
  socket().open();
  assert.deepEqual(socket().sent, [{ type: "subscribe", model: NOTE, id: ID, fields: ["title"], snapshot: true, request_id: 2 }]);
  socket().receive({ type: "subscribed", model: NOTE, id: ID, request_id: 2, data: { id: ID, title: "b" } });
  assert.deepEqual(seen.at(-1), { type: "snapshot", model: NOTE, id: ID, data: { id: ID, title: "b" } });
});

test("handlers of one (model, id) must ask for the same options (any order); others throw", () => {
  const { client, socket } = setup();
  socket().open();
  client.subscribe(NOTE, ID, () => {}, { actions: ["updated", "deleted"] });
  client.subscribe(NOTE, ID, () => {}, { actions: ["deleted", "updated"] });
  assert.equal(socket().sent.length, 1);
  assert.throws(() => client.subscribe(NOTE, ID, () => {}), TypeError);
  assert.throws(() => client.subscribe(NOTE, ID, () => {}, { actions: ["updated"], snapshot: true }), TypeError);
});

// --- collections --------------------------------------------------------------------------------

const OPEN_NOTES = { archived: false };
const row = (id, title = id) => ({ id, title });
const ids = (collection) => [...collection.rows.keys()];

test("collection(): a subscribe without id, snapshot by default; rows from the snapshot, then created/updated/deleted", async () => {
  const { client, socket } = setup();
  socket().open();
  const seen = [];
  const notes = client.collection("Notes.Note", { filter: OPEN_NOTES, onChange: (event) => seen.push(event.type) });
  assert.deepEqual(socket().sent, [{ type: "subscribe", model: NOTE, filter: OPEN_NOTES, snapshot: true, request_id: 1 }]);
  assert.equal(notes.model, NOTE);
  assert.deepEqual(notes.filter, OPEN_NOTES);
  const rows = notes.rows;
  const subscribed = { type: "subscribed", model: NOTE, filter: OPEN_NOTES, request_id: 1, data: [row("a"), row("b")] };
  socket().receive(subscribed);
  assert.deepEqual(await notes.ack, subscribed);
  assert.deepEqual([...notes.rows], [["a", row("a")], ["b", row("b")]]);
  assert.equal(notes.truncated, false);

  socket().receive({ type: "created", model: NOTE, id: "c", data: row("c"), request_id: 1 });
  socket().receive({ type: "updated", model: NOTE, id: "a", data: row("a", "A"), changed: ["title"], request_id: 1 });
  socket().receive({ type: "deleted", model: NOTE, id: "b", request_id: 1 });
  assert.deepEqual([...notes.rows], [["a", row("a", "A")], ["c", row("c")]], "updated keeps the row's place");
  // A row twice around the snapshot, an update of a row never seen: upserts.
  socket().receive({ type: "created", model: NOTE, id: "c", data: row("c", "C"), request_id: 1 });
  socket().receive({ type: "updated", model: NOTE, id: "d", data: row("d"), changed: ["title"], request_id: 1 });
  socket().receive({ type: "deleted", model: NOTE, id: "nope", request_id: 1 });
  assert.deepEqual([...notes.rows], [["a", row("a", "A")], ["c", row("c", "C")], ["d", row("d")]]);
  assert.equal(notes.rows, rows, "one Map for the collection's life");
  assert.deepEqual(seen, ["snapshot", "created", "updated", "deleted", "created", "updated", "deleted"]);
});

test("onChange: the snapshot event carries rows and truncated; callbacks run after rows changed; the remover works", () => {
  const { client, socket } = setup();
  socket().open();
  const notes = client.collection(NOTE);
  assert.deepEqual(socket().sent, [{ type: "subscribe", model: NOTE, snapshot: true, request_id: 1 }], "no filter: none sent");
  const seen = [];
  const remove = notes.onChange((event) => seen.push({ event, ids: ids(notes) }));
  socket().receive({ type: "subscribed", model: NOTE, request_id: 1, data: [row("a")], truncated: true });
  assert.equal(notes.truncated, true);
  assert.deepEqual(seen, [{ event: { type: "snapshot", model: NOTE, rows: notes.rows, truncated: true }, ids: ["a"] }]);
  socket().receive({ type: "created", model: NOTE, id: "b", data: row("b"), request_id: 1 });
  assert.deepEqual(seen[1].ids, ["a", "b"]);
  remove();
  socket().receive({ type: "deleted", model: NOTE, id: "a", request_id: 1 });
  assert.equal(seen.length, 2);
  assert.deepEqual(ids(notes), ["b"]);
});

test("frames are routed by request_id: two collections of one model with different filters, and an instance of the same row", () => {
  const { client, socket } = setup();
  socket().open();
  const open = client.collection(NOTE, { filter: { archived: false } });
  const archived = client.collection(NOTE, { filter: { archived: true } });
  const instance = [];
  client.subscribe(NOTE, "x", (event) => instance.push(event));
  socket().receive({ type: "subscribed", model: NOTE, filter: { archived: false }, request_id: 1, data: [] });
  socket().receive({ type: "subscribed", model: NOTE, filter: { archived: true }, request_id: 2, data: [] });
  socket().receive({ type: "subscribed", model: NOTE, id: "x", request_id: 3 });
  // The row moves from one view to the other: deleted in the first, created in the second.
  socket().receive({ type: "created", model: NOTE, id: "x", data: row("x"), request_id: 1 });
  socket().receive({ type: "deleted", model: NOTE, id: "x", request_id: 1 });
  socket().receive({ type: "created", model: NOTE, id: "x", data: row("x"), request_id: 2 });
  assert.deepEqual(ids(open), []);
  assert.deepEqual(ids(archived), ["x"]);
  assert.deepEqual(instance, [], "a collection's frames never reach an instance handler");
  assert.deepEqual(client.subscriptions(), [{ model: NOTE, id: "x" }], "subscriptions() lists instances only");
  socket().receive({ type: "updated", model: NOTE, id: "x", data: row("x"), changed: [], request_id: 3 });
  assert.equal(instance.length, 1, "the instance's own frames still do");
  socket().receive({ type: "created", model: NOTE, id: "y", data: row("y"), request_id: 99 });
  socket().receive({ type: "created", model: NOTE, id: "y", data: row("y") });
  assert.deepEqual([ids(open), ids(archived)], [[], ["x"]], "created of an unknown request_id is ignored");
});

test("two views of one (model, filter), keys in any order, share one subscription; the last close unsubscribes", async () => {
  const { client, socket } = setup();
  socket().open();
  const first = client.collection(NOTE, { filter: { archived: false, owner: "u1" } });
  const second = client.collection("NOTES.NOTE", { filter: { owner: "u1", archived: false } });
  assert.equal(socket().sent.length, 1);
  assert.equal(first.ack, second.ack);
  assert.throws(() => client.collection(NOTE, { filter: { owner: "u1", archived: false }, fields: ["title"] }), TypeError);
  assert.throws(() => client.collection(NOTE, { filter: { owner: "u1", archived: false }, snapshot: false }), TypeError);
  socket().receive({ type: "subscribed", model: NOTE, request_id: 1, data: [row("a")] });
  assert.deepEqual(ids(second), ["a"]);
  assert.equal(await first.close(), null, "a view remains: nothing sent");
  assert.equal(socket().sent.length, 1);
  socket().receive({ type: "created", model: NOTE, id: "b", data: row("b"), request_id: 1 });
  assert.deepEqual(ids(first), ["a"], "a closed view's rows stop changing");
  assert.deepEqual(ids(second), ["a", "b"]);
  const done = second.close();
  assert.deepEqual(socket().sent.at(-1), { type: "unsubscribe", model: NOTE, filter: { owner: "u1", archived: false }, request_id: 2 });
  assert.equal(await second.close(), null, "a second close does nothing");
  socket().receive({ type: "unsubscribed", model: NOTE, filter: { archived: false, owner: "u1" }, request_id: 2 });
  assert.equal((await done).type, "unsubscribed");
});

test("close() sends unsubscribe with the same filter; frames still in flight are ignored, by the instance handlers too", async () => {
  const { client, socket } = setup();
  socket().open();
  const seen = [];
  const notes = client.collection(NOTE, { filter: OPEN_NOTES, actions: ["created", "deleted"], fields: ["title"], onChange: (e) => seen.push(e) });
  assert.deepEqual(socket().sent[0], { type: "subscribe", model: NOTE, filter: OPEN_NOTES, actions: ["created", "deleted"], fields: ["title"], snapshot: true, request_id: 1 });
  const instance = [];
  client.subscribe(NOTE, "a", (e) => instance.push(e));
  socket().receive({ type: "subscribed", model: NOTE, request_id: 1, data: [row("a")] });
  const done = notes.close();
  assert.deepEqual(socket().sent.at(-1), { type: "unsubscribe", model: NOTE, filter: OPEN_NOTES, request_id: 3 });
  socket().receive({ type: "deleted", model: NOTE, id: "a", request_id: 1 });
  assert.deepEqual(ids(notes), ["a"]);
  assert.equal(seen.length, 1);
  assert.deepEqual(instance, [], "a stale collection frame is not an instance frame");
  socket().receive({ type: "unsubscribed", model: NOTE, filter: OPEN_NOTES, request_id: 3 });
  assert.equal((await done).request_id, 3);
});

test("after a reconnect: subscribes again with a new request_id and snapshot, rows REPLACED, a snapshot event, old frames ignored", () => {
  const { client, socket, clock } = setup();
  socket().open();
  const seen = [];
  const notes = client.collection(NOTE, { filter: OPEN_NOTES, onChange: (e) => seen.push(e.type) });
  client.subscribe(NOTE, "i", () => {});
  socket().receive({ type: "subscribed", model: NOTE, request_id: 1, data: [row("a"), row("b")] });
  socket().receive({ type: "subscribed", model: NOTE, id: "i", request_id: 2 });
  const rows = notes.rows;
  const old = socket();
  old.drop();
  assert.deepEqual(ids(notes), ["a", "b"], "rows are kept while offline");
  clock.advance(1000);
  socket().open();
  assert.deepEqual(socket().sent, [
    { type: "subscribe", model: NOTE, filter: OPEN_NOTES, snapshot: true, request_id: 3 },
    { type: "subscribe", model: NOTE, id: "i", request_id: 4 },
  ]);
  socket().receive({ type: "created", model: NOTE, id: "z", data: row("z"), request_id: 1 });
  assert.deepEqual(ids(notes), ["a", "b"], "a frame of the previous subscribe is ignored");
  // "a" was deleted and "c" created while offline.
  socket().receive({ type: "subscribed", model: NOTE, request_id: 3, data: [row("c"), row("b", "B")] });
  assert.deepEqual([...notes.rows], [["c", row("c")], ["b", row("b", "B")]]);
  assert.equal(notes.rows, rows, "replaced in place");
  assert.deepEqual(seen, ["snapshot", "snapshot"]);
  socket().receive({ type: "created", model: NOTE, id: "d", data: row("d"), request_id: 3 });
  assert.deepEqual(ids(notes), ["c", "b", "d"]);
});

test("event frames that come before the snapshot are held and applied after it, in order", () => {
  const { client, socket } = setup();
  socket().open();
  const seen = [];
  const notes = client.collection(NOTE, { onChange: (e) => seen.push([e.type, ids(notes)]) });
  socket().receive({ type: "updated", model: NOTE, id: "a", data: row("a", "new"), changed: ["title"], request_id: 1 });
  socket().receive({ type: "deleted", model: NOTE, id: "b", request_id: 1 });
  assert.deepEqual(ids(notes), []);
  socket().receive({ type: "subscribed", model: NOTE, request_id: 1, data: [row("a", "old"), row("b")] });
  assert.deepEqual([...notes.rows], [["a", row("a", "new")]]);
  assert.deepEqual(seen, [["snapshot", ["a", "b"]], ["updated", ["a", "b"]], ["deleted", ["a"]]]);
});

test("a subscribe re-sent after a drop drops the frames it held from the old socket", () => {
  const { client, socket, clock } = setup();
  socket().open();
  const notes = client.collection(NOTE);
  socket().receive({ type: "created", model: NOTE, id: "a", data: row("a"), request_id: 1 });
  socket().drop(); // before the answer: the same request is sent again
  clock.advance(1000);
  socket().open();
  assert.deepEqual(socket().sent, [{ type: "subscribe", model: NOTE, snapshot: true, request_id: 1 }]);
  socket().receive({ type: "subscribed", model: NOTE, request_id: 1, data: [] }); // "a" deleted meanwhile
  assert.deepEqual(ids(notes), []);
});

test("snapshot: false: no snapshot asked, events applied at once, none asked after a reconnect either", () => {
  const { client, socket, clock } = setup();
  socket().open();
  const notes = client.collection(NOTE, { snapshot: false });
  assert.deepEqual(socket().sent, [{ type: "subscribe", model: NOTE, request_id: 1 }]);
  socket().receive({ type: "created", model: NOTE, id: "a", data: row("a"), request_id: 1 });
  socket().receive({ type: "subscribed", model: NOTE, request_id: 1 });
  assert.deepEqual(ids(notes), ["a"]);
  socket().drop();
  clock.advance(1000);
  socket().open();
  assert.deepEqual(socket().sent, [{ type: "subscribe", model: NOTE, request_id: 2 }]);
  socket().receive({ type: "subscribed", model: NOTE, request_id: 2 });
  assert.deepEqual(ids(notes), ["a"]);
});

for (const code of ["not_found", "invalid"]) {
  test(`an error answer (${code}) rejects the collection's ack with a NotifyError naming the filter, and drops it`, async () => {
    const { client, socket, clock, errors } = setup();
    socket().open();
    // snapshot: false, so that a late frame would be applied at once were the collection not dropped.
    const notes = client.collection("notes.nope", { filter: { colour: "red" }, snapshot: false });
    socket().receive({ type: "error", code, detail: "No.", request_id: 1 });
    const error = await notes.ack.then(() => assert.fail("ack resolved"), (e) => e);
    assert.ok(error instanceof NotifyError);
    assert.equal(error.code, code);
    assert.equal(error.model, "notes.nope");
    assert.deepEqual(error.filter, { colour: "red" });
    assert.equal(error.id, undefined);
    assert.match(error.message, /notes\.nope \{"colour":"red"\}/);
    assert.deepEqual(errors, []);
    socket().receive({ type: "created", model: "notes.nope", id: "a", data: row("a"), request_id: 1 });
    assert.deepEqual(ids(notes), []);
    assert.equal(await notes.close(), null, "nothing to unsubscribe");
    socket().drop();
    clock.advance(1000);
    socket().open();
    assert.deepEqual(socket().sent, [], "not subscribed again");
  });
}

test("a collection subscribe without an answer times out and tells the server with the same filter", async () => {
  const { client, socket, clock } = setup();
  socket().open();
  const notes = client.collection(NOTE, { filter: OPEN_NOTES });
  clock.advance(5000);
  assert.equal((await outcome(notes.ack)).error?.code, "timeout");
  assert.deepEqual(socket().sent.at(-1), { type: "unsubscribe", model: NOTE, filter: OPEN_NOTES });
});

test("collection(): after client.close() its ack rejects with 'closed'; client.close() stops the rows", async () => {
  const { client, socket } = setup();
  socket().open();
  const notes = client.collection(NOTE);
  socket().receive({ type: "subscribed", model: NOTE, request_id: 1, data: [row("a")] });
  client.close();
  assert.equal((await outcome(client.collection(NOTE).ack)).error?.code, "closed");
  assert.deepEqual(ids(notes), ["a"]);
  assert.throws(() => client.collection(NOTE, { filter: [] }), TypeError);
});

test("unknown frame types carrying a collection's request_id are ignored; a throwing callback goes to onError", () => {
  const { client, socket, errors } = setup();
  socket().open();
  const boom = new Error("boom");
  const seen = [];
  const notes = client.collection(NOTE, { snapshot: false });
  notes.onChange(() => {
    throw boom;
  });
  notes.onChange((e) => seen.push(e.type));
  socket().receive({ type: "mystery", model: NOTE, id: "a", request_id: 1 });
  socket().receive({ type: "revoked", model: NOTE, id: "a", request_id: 1 });
  assert.deepEqual(seen, []);
  socket().receive({ type: "created", model: NOTE, id: "a", data: row("a"), request_id: 1 });
  assert.deepEqual(seen, ["created"]);
  assert.deepEqual(errors, [boom]);
});

// --- own echoes and collections -----------------------------------------------------------------

test("a welcome frame carrying a collection's request_id sets socketId and never reaches the collection", () => {
  const { client, socket, errors } = setup();
  socket().open();
  const seen = [];
  const notes = client.collection(NOTE, { snapshot: false, onChange: (event) => seen.push(event) });
  socket().receive({ type: "welcome", socket_id: "abcdefghijklmnopqrstuv", request_id: 1, id: "a", data: row("a") });
  assert.equal(client.socketId, "abcdefghijklmnopqrstuv");
  assert.deepEqual(client.headers(), { [SOCKET_ID_HEADER]: "abcdefghijklmnopqrstuv" });
  assert.deepEqual(ids(notes), []);
  assert.deepEqual(seen, []);
  assert.deepEqual(errors, []);
});

test("with echo 'mark' a collection applies a marked frame and passes it on; after a reconnect a new id and a fresh snapshot", () => {
  const { client, socket, clock } = setup({ echo: "mark" });
  assert.equal(socket().url, "wss://example.com/ws/notifications/?echo=mark");
  socket().open();
  socket().receive({ type: "welcome", socket_id: "first-socket-id-0000000" });
  const seen = [];
  const notes = client.collection(NOTE, { onChange: (event) => seen.push(event) });
  socket().receive({ type: "subscribed", model: NOTE, request_id: 1, data: [row("a")] });
  const mine = { type: "created", model: NOTE, id: "b", data: row("b"), request_id: 1, echo: true };
  socket().receive(mine);
  assert.deepEqual(ids(notes), ["a", "b"]);
  assert.deepEqual(seen.at(-1), mine);

  socket().drop();
  assert.equal(client.socketId, null);
  clock.advance(1000);
  socket().open();
  socket().receive({ type: "welcome", socket_id: "second-socket-id-000000" });
  assert.deepEqual(socket().sent, [{ type: "subscribe", model: NOTE, snapshot: true, request_id: 2 }]);
  socket().receive({ type: "subscribed", model: NOTE, request_id: 2, data: [row("b")] });
  assert.equal(client.socketId, "second-socket-id-000000");
  assert.deepEqual(ids(notes), ["b"]);
  assert.equal(seen.at(-1).type, "snapshot");
});
