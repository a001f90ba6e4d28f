// The notes page: renders the notes, saves edits through the REST API, and keeps everything live
// with the notify_kit client. Two collection subscriptions carry the whole page:
// - notes.note: every note this user may see (theirs and those shared with them), as a snapshot
//   and then created/updated/deleted *relative to this user*: a note shared with me arrives as
//   created, and leaves as deleted when the share is removed (or the note is deleted).
// - notes.profile: the people; my own row carries every field, the others' their display name.
// Both resubscribe with a fresh snapshot after a reconnect, so nothing is refetched by hand.
import { connect } from "notify-kit";

const config = JSON.parse(document.getElementById("notes-config").textContent);
const template = document.getElementById("note-template");
const sections = { mine: document.getElementById("mine"), shared: document.getElementById("shared") };
const statusEl = document.getElementById("status");
const notices = document.getElementById("notices");
const peopleEl = document.getElementById("people");
const profileForm = document.getElementById("my-profile");

const STATUS_TEXT = { connecting: "Connecting…", connected: "Live", reconnecting: "Reconnecting…", closed: "Offline" };
const FIELDS = ["title", "body"];
const PROFILE_FIELDS = ["display_name", "email", "phone"];
const notes = new Map(); // HashID -> {data, el}

// --- the live connection ---------------------------------------------------------------------

let ready = 0; // the page is ready once both first snapshots are shown
let notesShown = false;
let peopleShown = false;
function snapshotShown() {
  if (++ready === 2) document.body.dataset.ready = "true";
}

const client = connect(config.websocket, {
  onStatus(status) {
    statusEl.dataset.status = status;
    statusEl.textContent = STATUS_TEXT[status] ?? status;
  },
  onError(error) {
    console.warn("notify-kit:", error);
  },
});

// Our own API calls send client.headers(): their changes skip this socket, and the page shows
// what the API answered instead. Everyone else's changes arrive here.
const noteRows = client.collection("notes.note", { onChange: onNoteEvent });
const people = client.collection("notes.profile", { onChange: renderPeople });
window.notesDemo = { client, notes, noteRows, people }; // handy in the devtools console (and used by the e2e test)

function onNoteEvent(event) {
  if (event.type === "snapshot") {
    // The rows this user sees now (first load, or after a reconnect): replace the cards.
    for (const id of [...notes.keys()]) if (!event.rows.has(id)) remove(id);
    for (const data of event.rows.values()) show(data);
    if (!notesShown) {
      notesShown = true;
      snapshotShown();
    }
  } else if (event.type === "created" || event.type === "updated") {
    // created: a note just shared with me, or one of mine made in another tab (or the admin).
    show(event.data);
    flash(notes.get(event.id).el);
  } else if (event.type === "deleted") {
    // Deleted, or no longer shared with me: the protocol makes both look the same on purpose.
    const entry = notes.get(event.id);
    if (!entry) return;
    remove(event.id);
    notice(`“${entry.data.title}” is no longer available to you.`);
  }
}

function renderPeople(event) {
  const mine = people.rows.get(config.profile);
  if (mine && (event.type === "snapshot" || event.id === config.profile)) fillProfile(mine);
  const others = [...people.rows.values()].filter((row) => row.id !== config.profile);
  others.sort((a, b) => a.display_name.localeCompare(b.display_name));
  peopleEl.replaceChildren(
    ...others.map((row) => {
      const li = text("li", row.display_name);
      li.dataset.id = row.id;
      return li;
    }),
  );
  if (event.type === "updated" && event.id !== config.profile) {
    const li = peopleEl.querySelector(`li[data-id="${CSS.escape(event.id)}"]`);
    if (li) flash(li);
  }
  if (!peopleShown && event.type === "snapshot") {
    peopleShown = true;
    snapshotShown();
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

// --- rendering -------------------------------------------------------------------------------

/** Add or update the card of a note, then put it in its section. */
function show(data) {
  let entry = notes.get(data.id);
  if (!entry) {
    entry = { data, el: template.content.firstElementChild.cloneNode(true) };
    notes.set(data.id, entry);
    wire(entry);
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

// --- my profile ------------------------------------------------------------------------------

/** Show my profile in its form, leaving alone a field I am typing in. */
function fillProfile(data) {
  for (const field of PROFILE_FIELDS) {
    const input = profileForm.elements[field];
    if (document.activeElement !== input) input.value = data[field] ?? "";
  }
}

profileForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const state = profileForm.querySelector(".state");
  const body = Object.fromEntries(PROFILE_FIELDS.map((field) => [field, profileForm.elements[field].value]));
  state.textContent = "Saving…";
  try {
    // Not echoed to this socket: the answer is what the other users' pages are told (their share of it).
    fillProfile(await api(config.profileApi, "PATCH", body));
    state.textContent = "Saved";
    clearTimeout(profileForm.stateTimer);
    profileForm.stateTimer = setTimeout(() => (state.textContent = ""), 1500);
  } catch (error) {
    state.textContent = "";
    notice(`Could not save your profile: ${error.message}`, "error");
  }
});
