/**
 * The /metrics text: built from hosts and bookings made here, served by a store object that
 * counts its reads, and parsed back as Prometheus reads it.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { PerformanceObserver } from "node:perf_hooks";
import parsePrometheusTextFormat, { type MetricFamily } from "parse-prometheus-text-format";
import { register } from "prom-client";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Booking, BookingAccess, Phase } from "../lib/domain/booking";
import { type Host, newHost } from "../lib/domain/host";
import type { JsonObject, RunRecord, StepRecord, WaitRecord } from "../lib/domain/run";
import { emptyAccess } from "../lib/lifecycle/access-transitions";
import { newBooking } from "../lib/lifecycle/transitions";
import type { ImagingProgress } from "../lib/ports/imager";
import {
  DURATION_BUCKETS_SECONDS,
  type FogQueue,
  failureKind,
  fogQueueOf,
  type MetricsOptions,
  type MetricsSources,
  metricsText,
} from "../lib/web/metrics";
import { repoRoot } from "../sim/lab";
import { dashboardBooking } from "./helpers/bookings";

const NOW = new Date("2026-06-01T12:00:00.000Z");
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** ISO time `ms` before NOW (after it when negative). */
function ago(ms: number): string {
  return new Date(NOW.getTime() - ms).toISOString();
}

function booking(id: string, fields: Partial<Booking> = {}): Booking {
  const from = dashboardBooking({
    id,
    hostName: `host-${id}`,
    start: new Date(NOW.getTime() - HOUR),
    end: new Date(NOW.getTime() + HOUR),
  });
  return { ...newBooking(from, new Date(NOW.getTime() - 2 * HOUR)), ...fields };
}

function host(name: string, fields: Partial<Host> = {}): Host {
  return { ...newHost(name, { id: name, mac: null }, NOW), ...fields };
}

function done(at: string, result: JsonObject = {}): StepRecord {
  return { done: true, at, result, intent: {} };
}

function run(phase: Phase, generation: number, steps: Record<string, StepRecord>): RunRecord {
  return { phase, generation, steps };
}

function access(fields: Partial<BookingAccess>): BookingAccess {
  return { ...emptyAccess(), ...fields };
}

/** A provision run recorded from `startMs` before NOW, its work finishing `seconds` later. */
function provisionRun(startMs: number, seconds: number): RunRecord {
  const end = startMs - seconds * 1000;
  return run("provision", 1, {
    startImaging: done(ago(startMs)),
    "await:imaged": done(ago(startMs - 1000)),
    "await:host-up": done(ago(end + 2000)),
    buildPod: done(ago(end + 1000)),
    setHostAccess: done(ago(end)),
  });
}

/** A failed booking whose run recorded its failure at `step` with `error`. */
function failedAt(id: string, step: string, error: string, failure: string): Booking {
  return booking(id, {
    state: "failed",
    provisionGeneration: 1,
    failure,
    run: run("provision", 1, {
      recordFailure: done(ago(MINUTE), { step, error, host: "free", field: null }),
    }),
  });
}

interface Fixture {
  hosts?: Host[];
  bookings?: Booking[];
  fogQueue?: MetricsSources["fogQueue"];
}

/** The store's reads, counted: the figures come from one read of each per call. */
const reads = { hosts: 0, bookings: 0 };

function sources(fixture: Fixture): MetricsSources {
  return {
    store: {
      listHosts: async () => {
        reads.hosts += 1;
        return fixture.hosts ?? [];
      },
      listBookings: async () => {
        reads.bookings += 1;
        return fixture.bookings ?? [];
      },
    },
    now: () => NOW,
    ...(fixture.fogQueue ? { fogQueue: fixture.fogQueue } : {}),
  };
}

async function scrape(fixture: Fixture, options?: MetricsOptions): Promise<Scraped> {
  const { body, contentType } = await metricsText(sources(fixture), options);
  return new Scraped(parsePrometheusTextFormat(body), body, contentType);
}

class Scraped {
  constructor(
    readonly families: MetricFamily[],
    readonly body: string,
    readonly contentType: string,
  ) {}

  has(name: string): boolean {
    return this.families.some((f) => f.name === name);
  }

  family(name: string): MetricFamily {
    const found = this.families.find((f) => f.name === name);
    if (!found) throw new Error(`no ${name} in:\n${this.body}`);
    return found;
  }

  /** The family's samples as `label value → number` (the one label it has), or "" → number. */
  values(name: string, label?: string): Record<string, number> {
    const out: Record<string, number> = {};
    for (const sample of this.family(name).metrics) {
      if (!("value" in sample)) throw new Error(`${name} is not a gauge`);
      const key = label === undefined ? "" : (sample.labels?.[label] ?? "");
      out[key] = Number(sample.value);
    }
    return out;
  }

  value(name: string): number | undefined {
    return this.values(name)[""];
  }

  histogram(name: string): { buckets: Record<string, number>; count: number; sum: number } {
    const [sample, ...more] = this.family(name).metrics;
    if (!sample || more.length > 0 || !("buckets" in sample)) {
      throw new Error(`${name} is not one histogram`);
    }
    const buckets = Object.fromEntries(
      Object.entries(sample.buckets).map(([le, count]) => [le, Number(count)]),
    );
    return { buckets, count: Number(sample.count), sum: Number(sample.sum) };
  }

  /** Every label value of every sample, bucket bounds aside. */
  labelValues(): string[] {
    return this.families.flatMap((f) =>
      f.metrics.flatMap((sample) => Object.values(sample.labels ?? {})),
    );
  }
}

/** The cumulative buckets Prometheus would show for `observed` seconds. */
function bucketsFor(observed: number[]): Record<string, number> {
  const bounds = [...DURATION_BUCKETS_SECONDS.map(String), "+Inf"];
  return Object.fromEntries(
    bounds.map((le) => [le, observed.filter((s) => le === "+Inf" || s <= Number(le)).length]),
  );
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("laas_bookings and laas_hosts", () => {
  it("count every state, the ones no booking or host is in as 0", async () => {
    const got = await scrape({
      bookings: [
        booking("1", { state: "ready" }),
        booking("2", { state: "ready" }),
        booking("3", { state: "scheduled" }),
        booking("4", { state: "failed" }),
      ],
      hosts: [
        host("a", { state: "in-use" }),
        host("b"),
        host("c"),
        host("d", { state: "quarantined" }),
      ],
    });
    expect(got.values("laas_bookings", "state")).toEqual({
      scheduled: 1,
      provisioning: 0,
      ready: 2,
      releasing: 0,
      released: 0,
      cancelled: 0,
      failed: 1,
    });
    expect(got.values("laas_hosts", "state")).toEqual({
      free: 2,
      claimed: 0,
      "in-use": 1,
      cleaning: 0,
      quarantined: 1,
    });
    expect(got.value("laas_bookings_active")).toBe(2);
    expect(got.family("laas_bookings").type).toBe("GAUGE");
    expect(got.family("laas_bookings").help).toBe("Bookings the store holds, by state.");
    expect(got.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
  });

  it("read the store once per call, into a registry of its own", async () => {
    reads.hosts = 0;
    reads.bookings = 0;
    const first = await scrape({ bookings: [booking("1", { state: "ready" })] });
    const second = await scrape({ bookings: [booking("2", { state: "scheduled" })] });
    expect(reads).toEqual({ hosts: 2, bookings: 2 });
    // A registry shared between calls would hold the first call's figures (or refuse the names).
    expect(first.values("laas_bookings", "state").ready).toBe(1);
    expect(second.values("laas_bookings", "state")).toMatchObject({ ready: 0, scheduled: 1 });
    expect(register.getSingleMetric("laas_bookings")).toBeUndefined();
  });

  it("leave out what is not a known state rather than adding a label for it", async () => {
    const odd = { ...booking("1"), state: "lost" } as unknown as Booking;
    const got = await scrape({ bookings: [odd], hosts: [] });
    expect(Object.keys(got.values("laas_bookings", "state"))).not.toContain("lost");
    expect(Object.values(got.values("laas_bookings", "state")).every((n) => n === 0)).toBe(true);
  });
});

describe("the hand-overs", () => {
  it("count the bookings with access by hand-over state; laas_handovers_pending the pending", async () => {
    const got = await scrape({
      bookings: [
        booking("1", { state: "ready", access: access({ handover: "pending" }) }),
        booking("2", { state: "ready", access: access({ handover: "pending" }) }),
        booking("3", { state: "ready", access: access({ handover: "delivered" }) }),
        booking("4", { state: "released", access: access({ handover: "withdrawn" }) }),
        booking("5", { state: "scheduled" }),
      ],
    });
    expect(got.value("laas_handovers_pending")).toBe(2);
    expect(got.values("laas_handovers", "state")).toEqual({
      pending: 2,
      delivered: 1,
      undelivered: 0,
      withdrawn: 1,
    });
  });
});

describe("laas_booking_failures", () => {
  const cleaned = booking("5", {
    // The cleaning after a failed provision took the failed run's place: no record, only text.
    state: "failed",
    provisionGeneration: 1,
    releaseGeneration: 1,
    failure: "InstallerFailed: the installer exited 1 on 10.0.0.5\nstderr: secret-ish tail",
    progress: "failed; host cleaned",
    run: run("release", 1, { removePod: done(ago(HOUR)), "await:imaged": done(ago(MINUTE)) }),
  });
  const bookings = [
    failedAt("1", "AwaitImaging", "ImagingFailed", "ImagingFailed: FOG said task 17 cancelled"),
    failedAt("2", "AwaitImaging", "ImagingFailed", "ImagingFailed: deadline passed"),
    failedAt("3", "AwaitInstaller", "States.Timeout", "States.Timeout: the step ran past"),
    // Names and steps not on the lists: a library's error, a step of a later version.
    failedAt("4", "Somewhere", "FetchError", "FetchError: request to http://x failed"),
    cleaned,
    booking("6", { state: "failed", failure: "the host caught fire: call 555-0100" }),
    booking("7", {
      state: "failed",
      failure: "the booking's installer (Bogus) is not one the lab has",
      run: run("provision", 0, {
        recordFailure: done(ago(HOUR), {
          step: "Poll",
          error: "InvalidBooking",
          host: "free",
          field: "installer",
        }),
      }),
    }),
    // Not failed: not counted, whatever it recorded.
    booking("8", { state: "ready", failure: "ImagingFailed: an earlier generation" }),
  ];

  it("count failed bookings by the step and error name recorded, unknown ones as other", async () => {
    const got = await scrape({ bookings });
    const counted = got.family("laas_booking_failures").metrics.map((sample) => ({
      ...sample.labels,
      value: "value" in sample ? Number(sample.value) : Number.NaN,
    }));
    expect(counted).toHaveLength(5);
    expect(counted).toEqual(
      expect.arrayContaining([
        { step: "AwaitImaging", reason: "ImagingFailed", value: 2 },
        { step: "AwaitInstaller", reason: "States.Timeout", value: 1 },
        // The library's error at an unknown step, and a failure whose text names no error.
        { step: "other", reason: "other", value: 2 },
        { step: "other", reason: "InstallerFailed", value: 1 },
        { step: "Poll", reason: "InvalidBooking", value: 1 },
      ]),
    );
  });

  it("never carry a failure's text, a booking id or a host name in a label", async () => {
    const got = await scrape({ bookings, hosts: [host("host-1"), host("host-5")] });
    const labels = got.labelValues();
    for (const b of bookings) {
      expect(labels).not.toContain(b.id);
      expect(labels).not.toContain(b.hostName);
    }
    const fromTexts = [
      "task 17",
      "10.0.0.5",
      "secret-ish",
      "555-0100",
      "http://x",
      "Bogus",
      "fire",
    ];
    for (const text of fromTexts) {
      expect(labels.filter((label) => label.includes(text))).toEqual([]);
    }
  });

  it("reads a cleaned booking's error name off its failure text only when it is a known one", () => {
    expect(failureKind(cleaned)).toEqual({ step: "other", reason: "InstallerFailed" });
    expect(failureKind({ ...cleaned, failure: "HostUnreachable" })).toEqual({
      step: "other",
      reason: "HostUnreachable",
    });
    expect(failureKind({ ...cleaned, failure: "Error 42: no" }).reason).toBe("other");
    expect(failureKind({ ...cleaned, failure: null }).reason).toBe("other");
  });

  it("knows every error name LaaS's own errors carry", () => {
    const names = new Set<string>();
    const lib = join(repoRoot, "lib");
    for (const file of readdirSync(lib, { recursive: true, encoding: "utf8" })) {
      if (!file.endsWith(".ts")) continue;
      for (const match of readFileSync(join(lib, file), "utf8").matchAll(
        /override name = "([^"]+)"/g,
      )) {
        if (match[1]) names.add(match[1]);
      }
    }
    expect(names.size).toBeGreaterThan(20);
    const unknown = [...names].filter(
      (name) => failureKind(failedAt("x", "AwaitHost", name, name)).reason !== name,
    );
    expect(unknown).toEqual([]);
  });
});

describe("the duration histograms", () => {
  it("observe each ready booking's provision run and each released booking's release run", async () => {
    const got = await scrape({
      bookings: [
        booking("1", { state: "ready", provisionGeneration: 1, run: provisionRun(3 * HOUR, 1000) }),
        booking("2", { state: "ready", provisionGeneration: 1, run: provisionRun(2 * HOUR, 100) }),
        booking("3", {
          state: "ready",
          provisionGeneration: 1,
          run: provisionRun(4 * HOUR, 10_000),
        }),
        booking("4", {
          state: "released",
          provisionGeneration: 1,
          releaseGeneration: 1,
          run: run("release", 1, {
            removePod: done(ago(HOUR)),
            startImaging: done(ago(HOUR - 5000)),
            "await:imaged": done(ago(HOUR - 400_000)),
          }),
        }),
      ],
    });
    const provisioning = got.histogram("laas_provisioning_duration_seconds");
    expect(provisioning.buckets).toEqual(bucketsFor([1000, 100, 10_000]));
    expect(provisioning.count).toBe(3);
    expect(provisioning.sum).toBe(11_100);
    const release = got.histogram("laas_release_duration_seconds");
    expect(release.buckets).toEqual(bucketsFor([400]));
    expect(release).toMatchObject({ count: 1, sum: 400 });
    expect(got.family("laas_release_duration_seconds").type).toBe("HISTOGRAM");
  });

  it("start at the run's first record and end at its last work step, not a later note", async () => {
    const steps = provisionRun(HOUR, 600).steps;
    const got = await scrape({
      bookings: [
        booking("1", {
          state: "ready",
          provisionGeneration: 1,
          run: run("provision", 1, {
            ...steps,
            // NoteStarted, before StartImaging finished: where the run starts.
            "postStatus:started": done(ago(HOUR + 30_000)),
            // Written after MarkReady, even days later (the dashboard was down): no part of it.
            "postStatus:ready": done(ago(MINUTE)),
            // An intent not yet done ends nothing.
            startInstaller: { done: false, at: ago(MINUTE), result: null, intent: {} },
          }),
        }),
      ],
    });
    expect(got.histogram("laas_provisioning_duration_seconds")).toMatchObject({
      count: 1,
      sum: 630,
    });
  });

  it("leave out runs that did not end well, or are not the booking's current one", async () => {
    const got = await scrape({
      bookings: [
        // Still provisioning, with work done.
        booking("1", {
          state: "provisioning",
          provisionGeneration: 1,
          run: provisionRun(HOUR, 600),
        }),
        // Released from provisioning: the provision run never got it ready.
        booking("2", { state: "releasing", provisionGeneration: 1, run: provisionRun(HOUR, 600) }),
        // Ready, but its records are of an earlier generation.
        booking("3", { state: "ready", provisionGeneration: 2, run: provisionRun(HOUR, 600) }),
        // A release that failed.
        booking("4", {
          state: "failed",
          releaseGeneration: 1,
          run: run("release", 1, {
            removePod: done(ago(HOUR)),
            "await:imaged": done(ago(MINUTE)),
            recordFailure: done(ago(MINUTE), {
              step: "MarkReleased",
              error: "TransientError",
              host: "quarantined",
              field: null,
            }),
          }),
        }),
        // Failed with its host still to clean: the release run has not begun.
        booking("5", {
          state: "failed",
          cleanup: "after-provision",
          provisionGeneration: 1,
          run: provisionRun(HOUR, 600),
        }),
        // Ready with no records (written by an older version).
        booking("6", { state: "ready", provisionGeneration: 1, run: null }),
      ],
    });
    expect(got.histogram("laas_provisioning_duration_seconds").count).toBe(0);
    expect(got.histogram("laas_release_duration_seconds").count).toBe(0);
  });

  it("count a cleaning that ended well as a release", async () => {
    const got = await scrape({
      bookings: [
        booking("1", {
          state: "failed",
          provisionGeneration: 1,
          releaseGeneration: 1,
          failure: "ImagingFailed: cancelled",
          progress: "failed; host cleaned",
          run: run("release", 1, {
            removePod: done(ago(HOUR)),
            "await:imaged": done(ago(HOUR - 900_000)),
          }),
        }),
      ],
    });
    expect(got.histogram("laas_release_duration_seconds")).toMatchObject({ count: 1, sum: 900 });
  });
});

describe("FOG's queue", () => {
  const queue: FogQueue = { queued: 2, checkedIn: 1, inProgress: 3 };

  it("is shown with laas_fog_up 1 when FOG answers", async () => {
    const got = await scrape({ fogQueue: async () => queue });
    expect(got.value("laas_fog_up")).toBe(1);
    expect(got.values("laas_fog_tasks", "state")).toEqual({
      queued: 2,
      checked_in: 1,
      in_progress: 3,
    });
  });

  const down: [string, () => Promise<FogQueue | null>][] = [
    ["says it could not read FOG", async () => null],
    [
      "throws",
      async () => {
        throw new Error("ECONNREFUSED");
      },
    ],
    [
      "throws before its promise",
      () => {
        throw new Error("not even a promise");
      },
    ],
    ["never answers", () => new Promise<FogQueue | null>(() => undefined)],
  ];
  it.each(down)("is laas_fog_up 0 with no task figures when the source %s", async (_, source) => {
    const got = await scrape(
      { fogQueue: source, bookings: [booking("1", { state: "ready" })] },
      { fogTimeoutMs: 50 },
    );
    expect(got.value("laas_fog_up")).toBe(0);
    expect(got.has("laas_fog_tasks")).toBe(false);
    // The lab's own figures are all there.
    expect(got.values("laas_bookings", "state").ready).toBe(1);
  });

  it("is left out altogether when there is no source", async () => {
    const got = await scrape({});
    expect(got.has("laas_fog_up")).toBe(false);
    expect(got.has("laas_fog_tasks")).toBe(false);
  });

  it("is read from the imager's active tasks by FOG's state id", async () => {
    const task = (stateId: number): ImagingProgress => ({
      taskId: "1",
      hostId: "1",
      taskName: "t",
      stateId,
      stateName: "",
      percent: 0,
    });
    const tasks = [task(1), task(1), task(2), task(3), task(3), task(3), task(9)];
    await expect(fogQueueOf({ activeTasks: async () => tasks })()).resolves.toEqual(queue);
    const failing = {
      activeTasks: async (): Promise<ImagingProgress[]> => {
        throw new Error("401");
      },
    };
    await expect(fogQueueOf(failing)()).resolves.toBeNull();
  });
});

describe("the waits", () => {
  function waiting(
    id: string,
    wait: Partial<WaitRecord>,
    state: Booking["state"] = "provisioning",
  ) {
    return booking(id, {
      state,
      provisionGeneration: 1,
      wait: {
        event: "imaged",
        phase: "provision",
        generation: 1,
        token: `token-${id}`,
        since: ago(10 * MINUTE),
        deadline: ago(-HOUR),
        outcome: null,
        answeredAt: null,
        ...wait,
      },
    });
  }

  it("count current waits by event, the longest, and those past their deadline", async () => {
    const got = await scrape({
      bookings: [
        waiting("1", {}),
        waiting("2", { since: ago(25 * MINUTE), deadline: ago(5 * MINUTE) }),
        waiting("3", { event: "host-up", since: ago(2 * MINUTE) }),
        // The watcher found its outcome: it waits no longer.
        waiting("4", { since: ago(HOUR), outcome: { ok: true, result: {} } }),
        // Left on a booking that is no longer in that run.
        waiting("5", { since: ago(HOUR), deadline: ago(MINUTE) }, "ready"),
      ],
    });
    expect(got.values("laas_booking_waits", "event")).toEqual({
      imaged: 2,
      "host-up": 1,
      "installer-done": 0,
    });
    expect(got.values("laas_booking_oldest_wait_seconds", "event")).toEqual({
      imaged: 1500,
      "host-up": 120,
      "installer-done": 0,
    });
    expect(got.value("laas_booking_waits_overdue")).toBe(1);
  });
});

describe("the other figures", () => {
  it("count late starts and ends, cleanings, VPN users to sweep and failing hosts", async () => {
    const got = await scrape({
      bookings: [
        booking("1", { state: "scheduled", start: ago(MINUTE) }),
        booking("2", { state: "scheduled", start: ago(-MINUTE) }),
        booking("3", { state: "ready", end: ago(MINUTE) }),
        booking("4", { state: "ready", end: ago(-MINUTE) }),
        booking("5", { state: "failed", cleanup: "after-provision" }),
        booking("6", { state: "releasing", cleanup: "after-provision" }),
        booking("7", {
          state: "released",
          access: access({ vpnUser: "u7", vpnUserDn: "uid=u7", handover: "withdrawn" }),
        }),
        booking("8", { state: "failed", access: access({ vpnIntendedDn: "uid=u8" }) }),
        booking("9", { state: "released", access: access({ handover: "withdrawn" }) }),
        booking("10", { state: "ready", access: access({ vpnUserDn: "uid=u10" }) }),
        // Over: its end long past, but no release is due.
        booking("11", { state: "released", end: ago(HOUR) }),
      ],
      hosts: [
        host("a", { failures: 1 }),
        host("b", { failures: 0 }),
        host("c", { state: "quarantined", failures: 3 }),
      ],
    });
    expect(got.value("laas_bookings_past_start")).toBe(1);
    expect(got.value("laas_bookings_past_end")).toBe(1);
    expect(got.value("laas_bookings_cleanup_pending")).toBe(1);
    expect(got.value("laas_vpn_users_to_sweep")).toBe(2);
    expect(got.value("laas_hosts_failing")).toBe(1);
    expect(got.value("laas_bookings_active")).toBe(4);
    expect(got.values("laas_bookings", "state").released).toBe(3);
  });

  it("have a HELP line each, all named laas_", async () => {
    const got = await scrape({
      fogQueue: async () => ({ queued: 0, checkedIn: 0, inProgress: 0 }),
    });
    for (const family of got.families) {
      expect(family.name).toMatch(/^laas_/);
      expect(family.help.length, family.name).toBeGreaterThan(15);
    }
  });
});

describe("the process figures", () => {
  it("are added on request, their collectors started once per process", async () => {
    const observe = vi.spyOn(PerformanceObserver.prototype, "observe");
    const plain = await scrape({});
    expect(plain.has("process_cpu_user_seconds_total")).toBe(false);
    for (let i = 0; i < 3; i += 1) {
      const got = await scrape({}, { processMetrics: true });
      expect(got.has("process_cpu_user_seconds_total")).toBe(true);
      expect(got.has("nodejs_heap_size_used_bytes")).toBe(true);
      expect(got.has("laas_bookings")).toBe(true);
    }
    // The GC collector's observer: one for the process, not one per call.
    expect(observe.mock.calls.length).toBeLessThanOrEqual(1);
    expect(register.getSingleMetric("process_cpu_user_seconds_total")).toBeUndefined();
  });
});
