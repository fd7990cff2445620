/**
 * `laas status`: hosts and bookings with their states, as a table or JSON. It is for the lab's
 * operators: a failure is shown whole (the dashboard's note gives only its kind), with the step
 * that failed, under the tables.
 *
 * Bookings that have ended for good stay in the store for `booking_retention_days`; status shows
 * them for a day after their last change (RECENT_MS), the others with `--all`, and says how many
 * it left out.
 */
import type { StepHandler } from "../adapters/local/local-engine";
import { openEmbeddedRuntime } from "../app/embedded";
import { runningListener } from "../app/embedded-store";
import type { Booking } from "../domain/booking";
import { recordedFailure } from "../lifecycle/failure-record";
import { isFinal } from "../lifecycle/transitions";
import { silentLogger } from "../log";
import { loadAnyConfig } from "./config";
import { EXIT } from "./exit";

/** How long an ended booking is shown without `--all`: a day after its last change. */
export const RECENT_MS = 24 * 3600_000;

/** Shown without --all: not ended for good (a cleaning pending counts as active), or recently. */
export function shownByDefault(booking: Booking, now: Date): boolean {
  return !isFinal(booking) || now.getTime() - Date.parse(booking.updatedAt) < RECENT_MS;
}

export async function statusCommand(
  options: { config: string; json: boolean; all?: boolean },
  handlers: Record<string, StepHandler>,
  out: (line: string) => void,
): Promise<number> {
  const { lab } = await loadAnyConfig(options.config);
  const listener = await runningListener(lab.database);
  const embedded = await openEmbeddedRuntime(lab, {
    handlers,
    listen: false,
    logger: silentLogger,
  });
  try {
    const { store } = embedded.runtime;
    const hosts = (await store.listHosts()).sort((a, b) => a.name.localeCompare(b.name));
    const stored = (await store.listBookings()).sort((a, b) => a.start.localeCompare(b.start));
    const now = embedded.runtime.now();
    const bookings = options.all ? stored : stored.filter((b) => shownByDefault(b, now));
    const notShown = stored.length - bookings.length;
    if (options.json) {
      // Sealed credentials are safe to show, but of no use to a reader: say that they are there.
      const shown = bookings.map((b) =>
        b.access?.sealedCredentials
          ? { ...b, access: { ...b.access, sealedCredentials: "[sealed]" } }
          : b,
      );
      out(JSON.stringify({ listener, hosts, bookings: shown, notShown }, null, 2));
      return EXIT.ok;
    }
    out(listener ? `listener: running (pid ${listener.pid})` : "listener: not running");
    out("");
    out(
      table(
        ["HOST", "STATE", "BOOKING", "NOTE"],
        // A quarantine names the failure, which may span lines: shown whole below the tables.
        hosts.map((h) => [
          h.name,
          h.state,
          h.bookingId ?? "-",
          h.reason ? firstLine(h.reason) : "",
        ]),
      ),
    );
    out("");
    out(
      table(
        [
          "BOOKING",
          "HOST",
          "STATE",
          "START",
          "END",
          "INSTALLER",
          "VPN USER",
          "HAND-OVER",
          "PROGRESS",
        ],
        bookings.map((b) => [
          b.id,
          b.hostName,
          b.state,
          b.start.slice(0, 19),
          b.end.slice(0, 19),
          b.installer ?? "-",
          b.access?.vpnUser ?? "-",
          b.access ? b.access.handover : "-",
          b.state === "failed" ? `failed: ${firstLine(b.failure)}` : (b.progress ?? ""),
        ]),
      ),
    );
    if (notShown > 0) {
      out(`${notShown} older ended booking(s) not shown; --all shows them`);
    }
    const problems = bookings.flatMap(problemLines);
    if (problems.length > 0) {
      out("");
      for (const line of problems) out(line);
    }
    return EXIT.ok;
  } finally {
    await embedded.close();
  }
}

function firstLine(text: string | null): string {
  const [first = "", ...rest] = (text ?? "reason unknown").split("\n");
  return rest.length > 0 ? `${first} …` : first;
}

/** The whole failure of a failed booking, and why a hand-over was not delivered, indented. */
function problemLines(booking: Booking): string[] {
  const lines: string[] = [];
  const indented = (text: string) => text.split("\n").map((line) => `    ${line}`);
  if (booking.state === "failed") {
    // The run that failed is the booking's last one.
    const phase = booking.run?.phase ?? (booking.releaseGeneration > 0 ? "release" : "provision");
    const recorded = recordedFailure(booking, phase);
    const where = recorded ? ` at ${recorded.step}` : "";
    lines.push(`booking ${booking.id} (${booking.hostName}): ${phase} failed${where}:`);
    lines.push(...indented(booking.failure ?? "reason unknown"));
  }
  if (booking.access?.handover === "undelivered" && booking.access.handoverError) {
    lines.push(`booking ${booking.id} (${booking.hostName}): hand-over not delivered:`);
    lines.push(...indented(booking.access.handoverError));
  }
  return lines;
}

export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join("  ");
  return [line(header), ...rows.map(line)].join("\n");
}
