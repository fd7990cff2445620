/**
 * `laas status`: hosts and bookings with their states, as a table or JSON. It is for the lab's
 * operators: a failure is shown whole (the dashboard's note gives only its kind), with the step
 * that failed, under the tables.
 *
 * Bookings that have ended for good stay in the store for `booking_retention_days`; status shows
 * them for a day after their last change (RECENT_MS), the others with `--all`, and says how many
 * it left out.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { StepHandler } from "../adapters/local/local-engine";
import { openEmbeddedRuntime } from "../app/embedded";
import { runningListener } from "../app/embedded-store";
import { type Booking, isActive, OPEN_END } from "../domain/booking";
import type { JobRecord } from "../domain/job";
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
  options: { config: string; json: boolean; all?: boolean; watchSeconds?: number },
  handlers: Record<string, StepHandler>,
  print: (line: string) => void,
): Promise<number> {
  const { lab } = await loadAnyConfig(options.config);
  const stopping = new AbortController();
  const stop = () => stopping.abort();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  try {
    const watch = options.watchSeconds;
    if (watch === undefined) return await render();
    // Followed until Ctrl-C: on a terminal each view replaces the last, elsewhere each is
    // headed by when it was taken.
    const tty = process.stdout.isTTY === true;
    while (!stopping.signal.aborted) {
      const view: string[] = [];
      await render((line) => view.push(line));
      if (tty) print("\x1b[H\x1b[2J");
      else print(`--- ${new Date().toISOString()}`);
      for (const line of view) print(line);
      await sleep(watch * 1000, undefined, { signal: stopping.signal }).catch(() => undefined);
    }
    return EXIT.ok;
  } finally {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
  }

  /**
   * One view. The store is opened for it and closed after: with no listener running, status
   * holds the store's directory while it is open, and `--watch` must not keep a listener from
   * starting (the next view then reads through the listener).
   */
  async function render(out: (line: string) => void = print): Promise<number> {
    const listener = await runningListener(lab.database);
    const embedded = await openEmbeddedRuntime(lab, {
      handlers,
      listen: false,
      logger: silentLogger,
    });
    try {
      return await view(embedded, listener, out);
    } finally {
      await embedded.close();
    }
  }

  async function view(
    embedded: Awaited<ReturnType<typeof openEmbeddedRuntime>>,
    listener: Awaited<ReturnType<typeof runningListener>>,
    out: (line: string) => void,
  ): Promise<number> {
    const { store } = embedded.runtime;
    const hosts = (await store.listHosts()).sort((a, b) => a.name.localeCompare(b.name));
    const stored = (await store.listBookings()).sort((a, b) => a.start.localeCompare(b.start));
    const now = embedded.runtime.now();
    const bookings = options.all ? stored : stored.filter((b) => shownByDefault(b, now));
    const notShown = stored.length - bookings.length;
    // The jobs API's jobs not finished (all with --all), each task's round and last status.
    const jobs = (await store.listJobs())
      .filter((job) => options.all || job.finishedAt === null)
      .sort((a, b) => a.jobId - b.jobId);
    if (options.json) {
      // Sealed credentials are safe to show, but of no use to a reader: say that they are there.
      const shown = bookings.map((b) =>
        b.access?.sealedCredentials
          ? { ...b, access: { ...b.access, sealedCredentials: "[sealed]" } }
          : b,
      );
      out(JSON.stringify({ listener, hosts, bookings: shown, notShown, jobs }, null, 2));
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
        STATUS_WIDTH,
      ),
    );
    out("");
    out(
      table(
        ["BOOKING", "HOST", "STATE", "WHEN", "INSTALLER", "ACCESS", "PROGRESS"],
        bookings.map((b) => [
          b.id,
          b.hostName,
          b.state,
          when(b.start, b.end),
          b.installer ?? "-",
          b.access ? `${b.access.vpnUser ?? "-"} ${b.access.handover}` : "-",
          b.state === "failed" ? `failed: ${firstLine(b.failure)}` : (b.progress ?? ""),
        ]),
        STATUS_WIDTH,
      ),
    );
    if (notShown > 0) {
      out(`${notShown} older ended booking(s) not shown; --all shows them`);
    }
    if (jobs.length > 0) {
      out("");
      out(table(["JOB", "TASK", "ROUND", "STATUS", "NOTE"], jobs.flatMap(jobRows), STATUS_WIDTH));
    }
    const problems = [...bookings.flatMap(problemLines), ...jobs.flatMap(jobProblemLines)];
    if (problems.length > 0) {
      out("");
      for (const line of problems) out(line);
    }
    return EXIT.ok;
  }
}

function firstLine(text: string | null): string {
  const [first = "", ...rest] = (text ?? "reason unknown").split("\n");
  return rest.length > 0 ? `${first} …` : first;
}

/**
 * The whole failure of a failed booking, why a hand-over was not delivered and why an active
 * booking's end notice was not sent, indented.
 */
export function problemLines(booking: Booking): string[] {
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
  const notice = booking.endNotice;
  if (
    isActive(booking.state) &&
    notice &&
    (notice.state === "skipped" || notice.state === "failed")
  ) {
    const what = notice.state === "skipped" ? "not sent" : "not sent yet (tried again)";
    lines.push(`booking ${booking.id} (${booking.hostName}): end notice ${what}:`);
    lines.push(...indented(notice.reason ?? "reason unknown"));
  }
  return lines;
}

/** A job's tasks as status rows: kind, round, the last status the dashboard took. */
function jobRows(job: JobRecord): string[][] {
  return Object.values(job.tasks).map((t) => [
    String(job.jobId),
    t.task.kind === "access" ? `access ${t.task.accessType} ${t.task.user}` : t.kind,
    t.round,
    t.posted ? String(t.posted.status) : "-",
    t.postError ? "post failing" : "",
  ]);
}

/** Tasks whose last status post failed: why, and that the next poll posts again. */
export function jobProblemLines(job: JobRecord): string[] {
  return Object.values(job.tasks).flatMap((t) =>
    t.postError === null
      ? []
      : [
          `job ${job.jobId} task ${t.taskId} (${t.kind}, ${t.round}): status not posted, posted again at every poll:`,
          `    ${t.postError}`,
        ],
  );
}

/** How wide status's tables may be: an 80-column terminal wraps, 100 is the common minimum. */
export const STATUS_WIDTH = 100;

/**
 * Columns padded to their widest cell; a line longer than `width` (none by default: `host list`
 * shows an operator's reason whole) is cut, ending in "…".
 */
export function table(
  header: string[],
  rows: string[][],
  width = Number.POSITIVE_INFINITY,
): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => {
    const text = cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
    return [...text].length > width ? `${[...text].slice(0, width - 1).join("")}…` : text;
  };
  return [line(header), ...rows.map(line)].join("\n");
}

/**
 * A booking's start and end in this machine's time zone, named: `06-01 11:00–15:00 UTC`, or with
 * the end's day when it ends on another (`06-01 11:00–06-03 09:00 CEST`).
 */
export function when(startIso: string, endIso: string, timeZone?: string): string {
  const parts = (iso: string) => {
    const format = new Intl.DateTimeFormat("en-GB", {
      timeZone,
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      hourCycle: "h23",
      timeZoneName: "short",
    });
    const got = Object.fromEntries(
      format.formatToParts(new Date(iso)).map((p) => [p.type, p.value]),
    );
    return {
      day: `${got.month}-${got.day}`,
      time: `${got.hour}:${got.minute}`,
      zone: got.timeZoneName,
    };
  };
  const start = parts(startIso);
  // A job's booking (the jobs API gives no end) or a manual one: open until ended.
  if (endIso === OPEN_END) return `${start.day} ${start.time}–open ${start.zone}`;
  const end = parts(endIso);
  const endText = end.day === start.day ? end.time : `${end.day} ${end.time}`;
  // Across a change of summer time the two zones differ: each is named.
  const zone = end.zone === start.zone ? ` ${end.zone}` : ` ${start.zone}–${end.zone}`;
  return `${start.day} ${start.time}–${endText}${zone}`;
}
