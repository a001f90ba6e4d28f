// Must fail to compile (TS2345): subscribe() takes the model label as a string.
// tsc.test.mjs asserts that tsc rejects this file with exactly this error, so the check can fail.
import { connect } from "notify-kit";

connect("/ws/notifications/").subscribe(42, "Xk9vB2pQ", () => {});
