// Must fail to compile (TS2678): a collection's callbacks receive "snapshot", "created", "updated" or "deleted".
// tsc.test.mjs asserts that tsc rejects this file with exactly this error, so the check can fail.
import { connect } from "notify-kit";

connect("/ws/notifications/").collection("notes.note").onChange((event) => {
  switch (event.type) {
    case "revoked":
      break;
  }
});
