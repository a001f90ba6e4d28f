// Must fail to compile (TS2678): a handler only ever receives "updated", "deleted" or "revoked".
// tsc.test.mjs asserts that tsc rejects this file with exactly this error, so the check can fail.
import { connect } from "notify-kit";

connect("/ws/notifications/").subscribe("notes.note", "Xk9vB2pQ", (event) => {
  switch (event.type) {
    case "subscribed":
      break;
  }
});
