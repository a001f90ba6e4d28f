// The notes page: renders the notes, saves edits through the REST API, and keeps every card live
// with the notify_kit client. Each card subscribes to its note; the user's inbox tells the page
// when the list itself changed (a note shared with me, created in another tab, ...).
import { connect } from "notify-kit";

const config = JSON.parse(document.getElementById("notes-config").textContent);
const template = document.getElementById("note-template");
const sections = { mine: document.getElementById("mine"), shared: document.getElementById("shared") };
const statusEl = document.getElementById("status");
const notices = document.getElementById("notices");

const STATUS_TEXT = { connecting: "Connecting…", connected: "Live", reconnecting: "Reconnecting…", closed: "Offline" };
const FIELDS = ["title", "body"];
const notes = new Map(); // HashID -> {data, el, unsubscribe}

// --- the live connection ---------------------------------------------------------------------

let missedUpdates = false;
const client = connect(config.websocket, {
  onStatus(status) {
    statusEl.dataset.status = status;
    statusEl.textContent = STATUS_TEXT[status] ?? status;
    if (status === "reconnecting") missedUpdates = true;
    // The client subscribes everything again by itself; what changed while we were away is
    // fetched once, here.
    if (status === "connected" && missedUpdates) {
      missedUpdates = false;
      refresh();
    }
  },
  onError(error) {
    console.warn("notify-kit:", error);
  },
});
window.notesDemo = { client, notes }; // handy in the devtools console (and used by the e2e test)

client.subscribe("notes.inbox", config.inbox, () => refresh());

function onEvent(id, event) {
  const entry = notes.get(id);
  if (!entry) return;
  if (event.type === "updated") {
    // Someone else's change: the API calls send client.headers(), so our own saves skip this socket.
    show(event.data);
    flash(entry.el);
  } else if (event.type === "deleted") {
    remove(id);
    notice(`“${entry.data.title}” was deleted.`);
  } else if (event.type === "revoked") {
    remove(id);
    notice(`“${entry.data.title}” is no longer shared with you.`);
  }
}

// --- the API ---------------------------------------------------------------------------------

async function api(path, method = "GET", body = undefined) {
  const response = await fetch(path, {
    method,
    credentials: "same-origin",
    headers: {
      Accept: "application/json",
      "Content-Type": "application/json",
      "X-CSRFToken": config.csrfToken,
      ...client.headers(), // X-Notify-Socket-ID: what this call changes is not notified back to us
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return null;
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(describe(data) || `${response.status} ${response.statusText}`);
  return data;
}

function describe(data) {
  if (typeof data?.detail === "string") return data.detail;
  return Object.values(data ?? {}).flat().join(" ");
}

const noteUrl = (id, suffix = "") => `${config.api}${encodeURIComponent(id)}/${suffix}`;

// Reload the whole list; calls made while one runs are folded into one more run after it.
let refreshing = null;
let refreshAgain = false;
function refresh() {
  if (refreshing) {
    refreshAgain = true;
    return refreshing;
  }
  refreshing = (async () => {
    do {
      refreshAgain = false;
      try {
        const list = await api(config.api);
        const ids = new Set(list.map((data) => data.id));
        for (const id of [...notes.keys()]) if (!ids.has(id)) remove(id);
        for (const data of list) show(data);
      } catch (error) {
        notice(`Could not load the notes: ${error.message}`, "error");
      }
    } while (refreshAgain);
  })().finally(() => {
    refreshing = null;
  });
  return refreshing;
}

// --- rendering -------------------------------------------------------------------------------

/** Add or update the card of a note, then put it in its section. */
function show(data) {
  let entry = notes.get(data.id);
  if (!entry) {
    entry = { data, el: template.content.firstElementChild.cloneNode(true), unsubscribe: null };
    notes.set(data.id, entry);
    wire(entry);
    entry.unsubscribe = client.subscribe("notes.note", data.id, (event) => onEvent(data.id, event));
    entry.unsubscribe.ack.catch((error) => {
      // Gone or no longer ours between the list and the subscription.
      if (error.code === "not_found") remove(data.id);
    });
  }
  fill(entry, data);
  layout();
}

function fill(entry, data) {
  const { el } = entry;
  const mine = data.owner === config.user;
  el.dataset.id = data.id;
  el.dataset.owner = data.owner;
  for (const field of FIELDS) {
    const input = el.querySelector(`.${field}`);
    // Do not overwrite what the user is typing in this very field.
    const typing = document.activeElement === input && input.value !== entry.data[field];
    if (!typing && input.value !== data[field]) input.value = data[field];
  }
  entry.data = data;
  el.querySelector(".owner").textContent = mine ? "" : `from ${data.owner}`;
  el.querySelector(".actions").hidden = !mine;
  const shares = el.querySelector(".shares");
  shares.replaceChildren();
  if (mine) {
    if (data.shared_with.length === 0) shares.append(text("span", "Private", "muted"));
    for (const username of data.shared_with) {
      const chip = text("span", username, "chip");
      const unshare = text("button", "×", "unshare");
      unshare.type = "button";
      unshare.title = `Stop sharing with ${username}`;
      unshare.setAttribute("aria-label", unshare.title);
      unshare.addEventListener("click", () => act(entry, api(noteUrl(data.id, "unshare/"), "POST", { username })));
      chip.append(unshare);
      shares.append(chip);
    }
  } else {
    const others = data.shared_with.filter((username) => username !== config.user);
    if (others.length) shares.append(text("span", `· also shared with ${others.join(", ")}`, "muted"));
  }
}

/** Put every card in its section, newest first, moving only those out of place (focus stays). */
function layout() {
  const entries = [...notes.values()].sort((a, b) => Date.parse(b.data.created) - Date.parse(a.data.created));
  for (const [name, section] of Object.entries(sections)) {
    const wanted = entries.filter((e) => (e.data.owner === config.user) === (name === "mine")).map((e) => e.el);
    wanted.forEach((el, i) => {
      if (section.children[i] !== el) section.insertBefore(el, section.children[i] ?? null);
    });
  }
}

function remove(id) {
  const entry = notes.get(id);
  if (!entry) return;
  notes.delete(id);
  entry.el.remove();
  entry.unsubscribe?.();
}

function flash(el) {
  el.classList.remove("flash");
  void el.offsetWidth; // restart the animation
  el.classList.add("flash");
}

function text(tag, content, className) {
  const el = document.createElement(tag);
  el.textContent = content;
  if (className) el.className = className;
  return el;
}

function notice(message, kind = "info") {
  const el = text("p", message, `notice ${kind}`);
  notices.append(el);
  setTimeout(() => el.remove(), 6000);
}

// --- editing ---------------------------------------------------------------------------------

function wire(entry) {
  const { el } = entry;
  for (const field of FIELDS) {
    const input = el.querySelector(`.${field}`);
    input.addEventListener("change", () => save(entry, field, input));
  }
  el.querySelector(".title").addEventListener("keydown", (event) => {
    if (event.key === "Enter") event.target.blur(); // blur fires "change": Enter saves
  });
  el.querySelector(".share").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = event.target.elements.username;
    act(entry, api(noteUrl(entry.data.id, "share/"), "POST", { username: input.value.trim() })).then((ok) => {
      if (ok) input.value = "";
    });
  });
  const del = el.querySelector(".delete");
  let armed = null; // a first click arms the button; a second within 3 s deletes
  del.addEventListener("click", async () => {
    if (!armed) {
      del.textContent = "Really delete?";
      armed = setTimeout(() => {
        armed = null;
        del.textContent = "Delete";
      }, 3000);
      return;
    }
    clearTimeout(armed);
    armed = null;
    const title = entry.data.title;
    try {
      setState(entry, "Deleting…");
      await api(noteUrl(entry.data.id), "DELETE");
      remove(entry.data.id);
      notice(`Deleted “${title}”.`);
    } catch (error) {
      setState(entry, "");
      del.textContent = "Delete";
      notice(`Could not delete “${title}”: ${error.message}`, "error");
    }
  });
}

async function save(entry, field, input) {
  if (input.value === entry.data[field]) return;
  if (field === "title" && !input.value.trim()) {
    input.value = entry.data.title; // a note needs a title
    return;
  }
  await act(entry, api(noteUrl(entry.data.id), "PATCH", { [field]: input.value }), "Saving…", "Saved");
}

/** Run an API call for a card: show its progress, then the note it returns. */
async function act(entry, request, busy = "Saving…", done = "") {
  setState(entry, busy);
  try {
    show(await request);
    setState(entry, done, true);
    return true;
  } catch (error) {
    setState(entry, "");
    notice(error.message, "error");
    return false;
  }
}

function setState(entry, message, fade = false) {
  const state = entry.el.querySelector(".state");
  state.textContent = message;
  clearTimeout(entry.stateTimer);
  if (fade && message) entry.stateTimer = setTimeout(() => (state.textContent = ""), 1500);
}

document.getElementById("new-note").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const button = form.querySelector("button");
  button.disabled = true;
  try {
    const data = await api(config.api, "POST", { title: form.elements.title.value, body: form.elements.body.value });
    show(data);
    form.reset();
    form.elements.title.focus();
  } catch (error) {
    notice(`Could not add the note: ${error.message}`, "error");
  } finally {
    button.disabled = false;
  }
});

for (const data of JSON.parse(document.getElementById("notes-initial").textContent)) show(data);
document.body.dataset.ready = "true";
