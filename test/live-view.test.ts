/**
 * What a terminal is shown, piece by piece: the plain line of a log event, the live lines
 * (cli-progress) moved by the log's events and redrawn a few times a second at most, the
 * progress note that names FOG's partition, the log line each progress change makes, and the
 * teardown's expected "not found" answers kept out of the log as errors.
 */
import { PassThrough } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { elapsedText, imagingOf, LiveView } from "../lib/cli/live-view";
import { plainLogLine } from "../lib/cli/plain-log";
import { openTerminal, terminalMode } from "../lib/cli/terminal";
import type { Booking } from "../lib/domain/booking";
import { runLogged } from "../lib/lifecycle/host-access";
import { updateBookingProgress } from "../lib/lifecycle/progress";
import { newBooking, noteProgress } from "../lib/lifecycle/transitions";
import { progressText } from "../lib/lifecycle/watch-imaging";
import { createLogger } from "../lib/log";
import { teardownPlan } from "../lib/pod/plan";
import type { ImagingProgress } from "../lib/ports/imager";
import type { HostSession, RemoteCommand } from "../lib/ports/relay";
import type { Runtime } from "../lib/ports/runtime";
import { dashboardBooking } from "./helpers/bookings";
import { capturingLogger } from "./helpers/logs";

/** A terminal's stream: what cli-progress writes to it is kept (a TTY of 120 columns). */
function fakeTerminal(): {
  stream: NodeJS.WriteStream;
  written: () => string;
  writes: () => number;
} {
  const stream = new PassThrough();
  let text = "";
  let writes = 0;
  stream.on("data", (chunk: Buffer) => {
    text += chunk.toString("utf8");
    writes += 1;
  });
  Object.assign(stream, { isTTY: true, columns: 120, rows: 40, cursorTo: () => true });
  return {
    stream: stream as unknown as NodeJS.WriteStream,
    written: () => text,
    writes: () => writes,
  };
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: escape sequences are what it removes
const ANSI = /\u001b\[[0-?]*[ -/]*[@-~]/g;

/** A log line as the logger writes it. */
function line(fields: Record<string, unknown>): string {
  return `${JSON.stringify({ level: 30, time: "2026-06-01T21:41:10.123Z", service: "laas", ...fields })}\n`;
}

describe("a log event as a plain line", () => {
  it("starts with the time and its zone, then the level word, the message and the fields", () => {
    const text = plainLogLine(
      line({
        bookingId: "42",
        host: "pod-1",
        progress: "imaging: In-Progress 40%",
        msg: "progress",
      }),
    );
    expect(text).toMatch(/^2026-06-01 21:41:10\.123 UTC INFO: progress booking=42 host=pod-1 /);
    expect(text).toContain('progress="imaging: In-Progress 40%"');
    expect(text).not.toContain("service");
  });

  it("is one line: breaks shown as |, escape sequences and control characters dropped", () => {
    const text = plainLogLine(
      line({ level: 40, msg: "error:\u001b[31m failed\r\nsecond\u0007", err: "a\nb" }),
    );
    expect(text).toMatch(/ WARN: error: failed \| second err="a \| b"$/);
    expect([...text].every((c) => c >= " " || c === "\t")).toBe(true);
  });

  it("shows an error field by its message, and an empty message as no empty line", () => {
    const err = { type: "Error", message: "it broke", stack: "Error: it broke\n    at x" };
    expect(plainLogLine(line({ msg: "failed", err }))).toMatch(/ failed err="it broke"$/);
    expect(plainLogLine(line({ msg: "", bookingId: "7" }))).toMatch(/INFO: booking=7$/);
  });

  it("names the zone of this machine's time", () => {
    const zoned = plainLogLine(line({ msg: "x" }));
    expect(zoned).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} [A-Z][A-Za-z0-9+:-]* INFO: x$/);
  });
});

describe("the terminal mode", () => {
  it("is live on a terminal, plain elsewhere, json when asked", () => {
    expect(terminalMode(false, { isTTY: true })).toBe("live");
    expect(terminalMode(false, {})).toBe("plain");
    expect(terminalMode(true, { isTTY: true })).toBe("json");
  });

  /** What a command's logger and own lines print through a terminal of `mode`. */
  function printed(mode: "plain" | "json", plainLevel: "info" | "warn") {
    const out: string[] = [];
    const err: string[] = [];
    const terminal = openTerminal(mode, {
      out: (l) => out.push(l),
      err: (l) => err.push(l),
      plainLevel,
      eventsMoveLines: false,
    });
    const logger = createLogger({ streams: terminal.streams });
    logger.info({ bookingId: "8", progress: "imaging" }, "progress");
    logger.warn({ relay: "10.0.0.5:22" }, "waiting for the relay at 10.0.0.5:22");
    terminal.say("release of h started");
    terminal.close();
    return { out, err };
  }

  it("plain, shows a deploy's warnings only, and its own lines as they are", () => {
    const { out, err } = printed("plain", "warn");
    expect(out).toEqual([
      expect.stringMatching(/ WARN: waiting for the relay at 10\.0\.0\.5:22 relay=10\.0\.0\.5:22$/),
      "release of h started",
    ]);
    expect(err).toEqual([]);
    expect(printed("plain", "info").out).toHaveLength(3);
  });

  it("json, prints the log's lines on stdout and the command's own on stderr", () => {
    const { out, err } = printed("json", "warn");
    expect(out.map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual([
      "progress",
      "waiting for the relay at 10.0.0.5:22",
    ]);
    expect(err).toEqual(["release of h started"]);
  });
});

describe("the live lines", () => {
  it("shows a line per booking from the log's events, with FOG's percent and partition", async () => {
    const terminal = fakeTerminal();
    let now = 1_000_000;
    const view = new LiveView({ stream: terminal.stream, now: () => now });
    view.logLine(
      line({ msg: "execution started", bookingId: "11", execution: "booking-11-provision-1" }),
      { moves: true },
    );
    view.logLine(
      line({
        msg: "progress",
        bookingId: "11",
        host: "fog-machine-4",
        progress: "imaging: In-Progress 40%, partition 2",
      }),
      { moves: true },
    );
    view.logLine(
      line({ msg: "execution started", bookingId: "12", execution: "e-12", phase: "provision" }),
      { moves: true },
    );
    now += 125_000;
    await sleep(600);
    expect(view.shown()).toEqual(["11", "12"]);
    const text = terminal.written().replace(ANSI, "");
    expect(text).toContain(
      "11 fog-machine-4  imaging: In-Progress 40%, partition 2 [########------------]  2m05s",
    );
    expect(text).toContain("12  provision");
    view.stop();
  });

  it("prints warnings above the lines, and takes a line away when its execution ends", async () => {
    const terminal = fakeTerminal();
    const view = new LiveView({ stream: terminal.stream });
    const moves = { moves: true };
    view.logLine(
      line({ msg: "execution started", bookingId: "5", execution: "provision-5" }),
      moves,
    );
    view.logLine(line({ level: 40, msg: "waiting for the relay at 10.0.0.5:22" }), moves);
    // Another execution of the booking ending (an older one) leaves the line.
    view.logLine(line({ msg: "execution ended", bookingId: "5", execution: "older-5" }), moves);
    await sleep(400);
    expect(view.shown()).toEqual(["5"]);
    view.logLine(line({ msg: "execution ended", bookingId: "5", execution: "provision-5" }), moves);
    expect(view.shown()).toEqual([]);
    // Printed once the lines are gone: straight to the terminal.
    view.print("listener stopped");
    view.stop();
    const text = terminal.written().replace(ANSI, "");
    expect(text).toMatch(/WARN: waiting for the relay at 10\.0\.0\.5:22\r?\n/);
    expect(text.trimEnd().endsWith("listener stopped")).toBe(true);
  });

  it("with events that do not move it, only prints their warnings", () => {
    const terminal = fakeTerminal();
    const view = new LiveView({ stream: terminal.stream });
    view.logLine(line({ msg: "progress", bookingId: "5", progress: "imaging" }), { moves: false });
    view.logLine(line({ level: 50, msg: "release failed", bookingId: "5" }), { moves: false });
    expect(view.shown()).toEqual([]);
    expect(terminal.written()).toMatch(/ERROR: release failed booking=5\n$/);
    view.stop();
  });

  it("is drawn a few times a second at most, however many events come", async () => {
    const terminal = fakeTerminal();
    const view = new LiveView({ stream: terminal.stream });
    const started = Date.now();
    for (let percent = 0; Date.now() - started < 1_000; percent = (percent + 1) % 100) {
      view.show("9", { host: "h", stage: `imaging: In-Progress ${percent}%, partition 1` });
      await sleep(1);
    }
    const writes = terminal.writes();
    view.stop();
    // A redraw is about three writes (cursor, line, clear): hundreds of events, 4 redraws a
    // second (cli-progress's own default of 10 would be some 40 writes).
    expect(writes).toBeLessThan(30);
  });

  it("reads percent and partition off a note, and says how long it has been", () => {
    expect(imagingOf("imaging: In-Progress 7%, partition 2")).toEqual({ percent: 7, partition: 2 });
    expect(imagingOf("installing fuel")).toEqual({ percent: null, partition: null });
    expect([5_000, 125_000, 7_380_000].map(elapsedText)).toEqual(["5s", "2m05s", "2h03m"]);
  });
});

describe("FOG's percent, partition by partition", () => {
  const task = (percent: number, stateId = 3): ImagingProgress => ({
    taskId: "1",
    hostId: "1",
    taskName: "laas provision booking 1",
    stateId,
    stateName: stateId === 3 ? "In-Progress" : "Queued",
    percent,
  });

  it("counts a percent that drops as the next partition: 40 → 90 → 7 → 50 is 1, 1, 2, 2", () => {
    let note: string | null = "imaging: waiting for the host to network-boot";
    const seen: string[] = [];
    for (const percent of [40, 90, 7, 50]) {
      note = progressText(task(percent), note);
      seen.push(note);
    }
    expect(seen).toEqual([
      "imaging: In-Progress 40%, partition 1",
      "imaging: In-Progress 90%, partition 1",
      "imaging: In-Progress 7%, partition 2",
      "imaging: In-Progress 50%, partition 2",
    ]);
  });

  it("keeps the partition for an unchanged percent, and says the state before the transfer", () => {
    expect(progressText(task(90), "imaging: In-Progress 90%, partition 3")).toBe(
      "imaging: In-Progress 90%, partition 3",
    );
    expect(progressText(task(0, 1), "imaging: In-Progress 90%, partition 3")).toBe(
      "imaging: Queued",
    );
  });
});

/** A store of one booking, enough for updateBookingProgress. */
function oneBookingRuntime(booking: Booking) {
  let current = booking;
  const store = {
    updateBooking: async (_id: string, change: (b: Booking) => Booking | null) => {
      const next = change(current);
      if (next === null) return { changed: false, item: current };
      current = next;
      return { changed: true, item: next };
    },
  };
  const { logger, lines } = capturingLogger();
  const rt = { store, logger } as unknown as Pick<Runtime, "store" | "logger">;
  return { rt, lines };
}

describe("a progress note written", () => {
  it("is logged with its booking and host once, when it changes", async () => {
    const booking = {
      ...newBooking(dashboardBooking({ id: "21", hostName: "pod-21" }), new Date()),
      state: "provisioning" as const,
      provisionGeneration: 1,
    };
    const { rt, lines } = oneBookingRuntime(booking);
    const note = noteProgress("provision", 1, "building the virtual pod");
    await updateBookingProgress(rt, "21", note);
    await updateBookingProgress(rt, "21", note);
    // A run no longer current writes nothing, and logs nothing.
    await updateBookingProgress(rt, "21", noteProgress("provision", 2, "installing fuel"));
    const logged = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(logged).toEqual([
      expect.objectContaining({
        msg: "progress",
        bookingId: "21",
        host: "pod-21",
        progress: "building the virtual pod",
      }),
    ]);
  });
});

describe("a teardown command that finds nothing to remove", () => {
  const [destroy] = teardownPlan(
    { file: "n.yaml", template: "t", networks: [] } as never,
    { file: "d.yaml", template: "t", domains: [{ name: "master" }] } as never,
  );
  const virshSays = "error: failed to get domain 'master'";

  function hostAnswering(exitCode: number): HostSession {
    return {
      hostKey: "SHA256:x",
      confirmIdentity: async () => undefined,
      run: async (_command: RemoteCommand, sink) => {
        sink?.("stderr", virshSays);
        return { exitCode, stdout: "", stderr: `${virshSays}\n` };
      },
    };
  }

  it("is logged as what it means, at info, its error output at debug only", async () => {
    const { logger, lines } = capturingLogger("debug");
    await runLogged(hostAnswering(1), destroy!, logger.child({ bookingId: "3" }));
    const logged = lines.map((l) => JSON.parse(l) as { level: number; msg: string });
    expect(logged.filter((l) => l.level >= 30)).toEqual([
      expect.objectContaining({
        level: 30,
        msg: "domain master is not running (or not defined): nothing to stop",
      }),
    ]);
    expect(logged).toContainEqual(expect.objectContaining({ level: 20, msg: virshSays }));
  });

  it("that fails for good has what it printed logged at info before its error goes on", async () => {
    const { logger, lines } = capturingLogger("info");
    const failing: HostSession = {
      ...hostAnswering(1),
      run: async (_command, sink) => {
        sink?.("stderr", "error: failed to connect to the hypervisor");
        throw new Error("connection lost");
      },
    };
    await expect(runLogged(failing, destroy!, logger)).rejects.toThrow("connection lost");
    expect(lines.map((l) => JSON.parse(l) as { level: number; msg: string })).toEqual([
      expect.objectContaining({ level: 30, msg: "error: failed to connect to the hypervisor" }),
    ]);
  });

  it("that did remove something, or any other command, has its output logged at info", async () => {
    const { logger, lines } = capturingLogger("info");
    await runLogged(hostAnswering(0), destroy!, logger);
    await runLogged(hostAnswering(0), { argv: ["true"], timeoutSeconds: 5 }, logger);
    expect(lines.map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual([
      virshSays,
      virshSays,
    ]);
  });
});

describe("the logger's ISO times", () => {
  it("are ISO strings, not epoch numbers", () => {
    const written: string[] = [];
    createLogger({ streams: [{ write: (l) => written.push(l) }] }).info("x");
    const { time } = JSON.parse(written[0]!) as { time: unknown };
    expect(time).toEqual(expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/));
  });
});
