/**
 * The lab of bench/reconcile.ts in a process of its own (a dynalite behind its request counter,
 * and the paginated dashboard), so that what the benchmark measures of memory is the poller's
 * alone. Started with `fork`; talks over the IPC channel:
 *   → { kind: "ready", address }                       once the lab is up
 *   ← { kind: "counts" }   → { kind: "counts", counts }  what reached the store since the reset
 *   ← { kind: "reset" }    → { kind: "reset" }
 *   ← { kind: "close" }                                 closes the lab and exits
 * Arguments: bookings, hosts, and optionally the store's directory (default: in memory).
 */
import "../lib/polyfills";
import { startScaleLab } from "../test/helpers/scale-lab";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

const [bookings, hosts, database] = process.argv.slice(2);
const send = (message: unknown) => process.send?.(message);

const lab = await startScaleLab({
  bookings: Number(bookings),
  hosts: Number(hosts),
  ...(database ? { database } : {}),
});
process.on("message", (message: { kind?: string }) => {
  switch (message.kind) {
    case "counts":
      send({ kind: "counts", counts: lab.proxy.counts() });
      return;
    case "reset":
      lab.proxy.reset();
      send({ kind: "reset" });
      return;
    case "close":
      void lab.close().finally(() => process.exit(0));
      return;
  }
});
send({ kind: "ready", address: lab.address });
