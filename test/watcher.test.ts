/**
 * The lab's one watcher against the FOG simulator: one `task/current` read per cycle however many
 * hosts are imaging (1 or 20), a host list read only in a cycle where some task has left the
 * active list, every waiting booking's token answered once — success when the host's `deployed`
 * changed, failure (task cancelled) at the deadline — and heartbeats meanwhile. Bookings and hosts
 * live in the real store (dynalite); the engine is a stand-in that records what it is told.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { FogClient } from "../lib/adapters/fog/fog-client";
import { allOf } from "../lib/lifecycle/checkpoints";
import { beginProvisioning, newBooking } from "../lib/lifecycle/transitions";
import { recordOutcome, registerWait } from "../lib/lifecycle/waits";
import { watch } from "../lib/lifecycle/watch";
import { silentLogger } from "../lib/log";
import { Secret } from "../lib/secret";
import type { FogSim } from "../sim/fog-sim";
import { dashboardBooking } from "./helpers/bookings";
import { waitFor } from "./helpers/wait";
import {
  type WatcherLab as Lab,
  startWatcherLab,
  WATCHER_LAB_IMAGE,
  waitingForImaging,
} from "./helpers/watcher-lab";

const lab = startWatcherLab;
const waiting = async (l: Lab, host: string, index: number, deadline: Date) =>
  (await waitingForImaging(l, host, index, deadline)).token;

/** Runs one watcher cycle and answers the FOG requests it made, by route. */
async function cycle(l: Lab): Promise<string[]> {
  const before = l.fog.requests.length;
  await watch(l.rt);
  return l.fog.requests.slice(before).map((r) => `${r.method} ${r.route}`);
}

describe.each([1, 20])("the watcher with %i host(s) imaging", (hosts) => {
  let l: Lab;
  afterEach(async () => l?.close());

  it("reads task/current once per cycle, the host list only when a task has left it", async () => {
    l = await lab(hosts);
    const later = new Date(Date.now() + 3_600_000);
    const tokens: string[] = [];
    for (let i = 0; i < hosts; i++) tokens.push(await waiting(l, `pod${i + 1}`, i + 1, later));

    const cycles: { requests: string[]; completed: number }[] = [];
    for (let n = 0; n < 400 && l.engine.of("success").length < hosts; n++) {
      const before = l.engine.of("success").length;
      const requests = await cycle(l);
      cycles.push({ requests, completed: l.engine.of("success").length - before });
      await sleep(20);
    }
    expect(l.engine.of("success")).toHaveLength(hosts);
    for (const { requests, completed } of cycles) {
      expect(requests.filter((r) => r === "GET task/current")).toHaveLength(1);
      expect(requests.length).toBeLessThanOrEqual(2);
      for (const r of requests) expect(["GET task/current", "GET host"]).toContain(r);
      // The host list is read in the cycles where some deploy has finished, and only then.
      expect(requests.includes("GET host")).toBe(completed > 0);
    }
    // Each token answered once with the new `deployed`, the host's key provenance updated.
    expect(new Set(l.engine.of("success").map((a) => a.token))).toEqual(new Set(tokens));
    const deployed = new Map(l.fog.hosts().map((h) => [h.name, h.deployed]));
    for (let i = 0; i < hosts; i++) {
      const answer = l.engine.of("success").find((a) => a.token === tokens[i]);
      expect(answer?.detail).toEqual({ deployed: deployed.get(`pod${i + 1}`) });
      expect((await l.db.store.getHost(`pod${i + 1}`))?.deployed).toBe(deployed.get(`pod${i + 1}`));
      const booking = await l.db.store.getBooking(`${i + 1}`);
      expect(booking?.wait?.answeredAt).not.toBeNull();
      expect(booking?.progress).toBe("imaged");
    }
    // While they were imaging the tokens got heartbeats; answered ones get nothing more.
    expect(l.engine.of("heartbeat").length).toBeGreaterThan(0);
    const after = l.engine.answers.length;
    expect(await cycle(l)).toEqual([]);
    expect(l.engine.answers.length).toBe(after);
  });
});

describe("the watcher at a deadline", () => {
  let l: Lab;
  afterEach(async () => l?.close());

  it("cancels the imaging task and fails the wait with why", async () => {
    l = await lab(2);
    // Both still imaging when the watcher looks, however slow the machine: only the deadline
    // tells them apart.
    l.fog.stallHost("pod1");
    const token = await waiting(l, "pod1", 1, new Date(Date.now() - 1_000));
    l.fog.stallHost("pod2");
    const other = await waiting(l, "pod2", 2, new Date(Date.now() + 3_600_000));
    await cycle(l);
    const failures = l.engine.of("failure");
    expect(failures).toEqual([
      {
        token,
        kind: "failure",
        detail: {
          error: "ImagingFailed",
          cause: expect.stringMatching(
            /^imaging of pod1 did not finish by its deadline .*; the task was cancelled$/,
          ),
        },
      },
    ]);
    expect(l.fog.tasks().find((t) => t.hostName === "pod1")?.stateId).toBe(5);
    // The other booking's wait goes on, with a heartbeat.
    expect(l.engine.of("heartbeat").map((a) => a.token)).toContain(other);
    expect((await l.db.store.getBooking("1"))?.wait?.outcome).toMatchObject({ ok: false });
  });

  it("fails a wait whose task left FOG without a completed deploy", async () => {
    l = await lab(1);
    const token = await waiting(l, "pod1", 1, new Date(Date.now() + 3_600_000));
    await l.imager.cancel("1");
    await cycle(l);
    expect(l.engine.of("failure")).toEqual([
      {
        token,
        kind: "failure",
        detail: {
          error: "ImagingFailed",
          cause:
            "the imaging task of pod1 left FOG's active tasks without a completed deploy (cancelled or failed in FOG)",
        },
      },
    ]);
  });

  it("answers an outcome a watcher found but did not answer (it stopped between the two)", async () => {
    l = await lab(1);
    const token = await waiting(l, "pod1", 1, new Date(Date.now() + 3_600_000));
    const booking = await l.db.store.getBooking("1");
    const found = { ok: true as const, result: { deployed: "2026-12-01 10:00:00" } };
    await l.db.store.updateBooking("1", recordOutcome(booking!.wait!, found, new Date()));
    // The next cycle answers what is on record, without looking at FOG for it again.
    expect(await cycle(l)).toEqual([]);
    expect(l.engine.of("success")).toEqual([
      { token, kind: "success", detail: { deployed: "2026-12-01 10:00:00" } },
    ]);
    expect((await l.db.store.getBooking("1"))?.wait?.answeredAt).not.toBeNull();
    await cycle(l);
    expect(l.engine.of("success")).toHaveLength(1);
  });
});

describe("the watcher when FOG ends a task without a deploy", () => {
  let l: Lab;
  afterEach(async () => l?.close());
  const imagedBefore = "2024-05-01 10:00:00";
  const LEFT_WITHOUT_DEPLOY =
    "the imaging task of pod1 left FOG's active tasks without a completed deploy (cancelled or failed in FOG)";

  /** Two hosts FOG imaged before (their `deployed` is set), a big image: imaging takes a while. */
  const imagedLab = () =>
    lab(2, {
      hosts: [
        { name: "pod1", mac: "52:54:00:00:00:01", deployed: imagedBefore },
        { name: "pod2", mac: "52:54:00:00:00:02", deployed: imagedBefore },
      ],
      images: [{ id: WATCHER_LAB_IMAGE, name: "clean", sizeGB: 60 }],
    });

  it.each([
    ["cancelled in FOG's web UI (state 5)", (fog: FogSim) => fog.cancelTask("pod1"), 5],
    ["marked failed by newer FOG (state 6)", (fog: FogSim) => fog.failTask("pod1"), 6],
  ])("fails the wait of a task %s mid-imaging, on a host imaged before", async (_, end, state) => {
    l = await imagedLab();
    const later = new Date(Date.now() + 3_600_000);
    const token = await waiting(l, "pod1", 1, later);
    const other = await waiting(l, "pod2", 2, later);
    await waitFor("pod1's transfer to be under way", () =>
      l.fog.tasks().some((t) => t.hostName === "pod1" && t.stateId === 3 && t.percent > 0)
        ? true
        : undefined,
    );
    // A cycle while it runs: pending, with its progress.
    await cycle(l);
    expect(l.engine.answers.filter((a) => a.kind !== "heartbeat")).toEqual([]);

    expect(end(l.fog)).toBe(true);
    await cycle(l);

    // The host's `deployed` is the one from before: no deploy completed, whatever else is true.
    expect(l.fog.hosts()[0]?.deployed).toBe(imagedBefore);
    expect(l.fog.tasks().find((t) => t.hostName === "pod1")?.stateId).toBe(state);
    expect(l.engine.of("success")).toEqual([]);
    expect(l.engine.of("failure")).toEqual([
      {
        token,
        kind: "failure",
        detail: { error: "ImagingFailed", cause: LEFT_WITHOUT_DEPLOY },
      },
    ]);
    expect((await l.db.store.getBooking("1"))?.wait?.outcome).toMatchObject({ ok: false });
    // The other host's imaging goes on.
    expect(l.engine.of("heartbeat").map((a) => a.token)).toContain(other);
  });
});

describe("the watcher and FOG's ids", () => {
  let l: Lab;
  afterEach(async () => l?.close());

  it("matches a task's zero-filled hostID to the host being imaged, next to another host's task", async () => {
    l = await lab(3);
    // pod1's task stays in task/current beside pod3's, all the way through.
    l.fog.stallHost("pod1");
    const later = new Date(Date.now() + 3_600_000);
    await waiting(l, "pod1", 1, later);
    const token = await waiting(l, "pod3", 3, later);
    // The watcher reads FOG through a proxy that zero-fills every id ("3" → "003").
    const zeroFilling = zeroFillingClient(l.fog);
    l.rt.imagerFor = () => zeroFilling;
    expect((await zeroFilling.activeTasks()).map((t) => t.hostId).sort()).toEqual(["1", "3"]);

    for (let n = 0; n < 400 && l.engine.of("success").length === 0; n++) {
      await cycle(l);
      expect(l.engine.of("failure")).toEqual([]);
      await sleep(20);
    }
    const pod3 = l.fog.hosts().find((h) => h.name === "pod3");
    expect(l.engine.of("success")).toEqual([
      { token, kind: "success", detail: { deployed: pod3?.deployed } },
    ]);
    expect(l.fog.tasks().find((t) => t.hostName === "pod1")?.stateId).toBe(2);
  });
});

/** A FOG client whose answers have every host id zero-filled to three digits, as "003". */
function zeroFillingClient(fog: FogSim): FogClient {
  const pad = (value: unknown) => (typeof value === "string" ? value.padStart(3, "0") : value);
  const rewrite = (json: unknown): unknown => {
    if (Array.isArray(json)) return json.map(rewrite);
    if (typeof json !== "object" || json === null) return json;
    const copy: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(json)) copy[key] = rewrite(value);
    if ("hostID" in copy) copy.hostID = pad(copy.hostID);
    if ("primac" in copy && "id" in copy) copy.id = pad(copy.id);
    return copy;
  };
  return new FogClient(
    {
      server: fog.url,
      apiKey: new Secret("watcher-api"),
      userKey: new Secret("watcher-user"),
      requestTimeoutSeconds: 30,
    },
    silentLogger,
    {
      fetch: async (url, init) => {
        const response = await fetch(url, init);
        const text = await response.text();
        let body = text;
        try {
          body = JSON.stringify(rewrite(JSON.parse(text)));
        } catch {
          // Not JSON: passed on as it came.
        }
        const type = response.headers.get("content-type") ?? "application/json";
        return new Response(body, { status: response.status, headers: { "content-type": type } });
      },
    },
  );
}

describe("the watcher's cycle", () => {
  let l: Lab;
  afterEach(async () => l?.close());

  it("heartbeats every wait first, and leaves a look slower than its budget to the next cycle", async () => {
    l = await lab(1);
    const imaging = await waiting(l, "pod1", 1, new Date(Date.now() + 3_600_000));
    // A second booking waits for its host, behind a relay that never answers.
    const booting = await waitingForHost(l, "2");
    l.rt.relay = { session: () => new Promise(() => undefined) };
    const started = Date.now();
    await watch(l.rt, { budgetMs: 300 });
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(
      l.engine
        .of("heartbeat")
        .map((a) => a.token)
        .sort(),
    ).toEqual([imaging, booting].sort());
    // The slow look's wait is neither answered nor failed: it is looked at again next cycle.
    expect(l.engine.answers.filter((a) => a.token === booting && a.kind !== "heartbeat")).toEqual(
      [],
    );
  });

  it("goes on with the other bookings when one's answer cannot be sent", async () => {
    l = await lab(2);
    // Still imaging at their deadlines, however slow the machine.
    l.fog.stallHost("pod1");
    l.fog.stallHost("pod2");
    const first = await waiting(l, "pod1", 1, new Date(Date.now() - 1_000));
    const second = await waiting(l, "pod2", 2, new Date(Date.now() - 1_000));
    l.engine.failing.add(first);
    await watch(l.rt);
    // Both deadlines passed: the second is failed though the first could not be answered.
    expect(l.engine.of("failure").map((a) => a.token)).toEqual([second]);
    l.engine.failing.delete(first);
    await watch(l.rt);
    expect(
      l.engine
        .of("failure")
        .map((a) => a.token)
        .sort(),
    ).toEqual([first, second].sort());
  });

  it("answers the token a wait has now, never one that was replaced during the cycle", async () => {
    l = await lab(1);
    const old = await waiting(l, "pod1", 1, new Date(Date.now() + 3_600_000));
    await waitFor("the deploy to complete", () =>
      l.fog.tasks().every((t) => t.stateId === 4) ? true : undefined,
    );
    // While the watcher heartbeats, the workflow registers the wait again under a new token.
    l.engine.onHeartbeat = async (token) => {
      if (token !== old) return;
      l.engine.live.add("token-1b");
      const input = {
        bookingId: "1",
        hostName: "pod1",
        phase: "provision",
        generation: 1,
      } as const;
      const deadline = new Date(Date.now() + 3_600_000);
      await l.db.store.updateBooking(
        "1",
        registerWait(input, "imaged", "token-1b", new Date(), deadline),
      );
    };
    await watch(l.rt);
    expect(l.engine.of("success")).toEqual([]);
    await watch(l.rt);
    expect(l.engine.of("success").map((a) => a.token)).toEqual(["token-1b"]);
  });
});

/** A booking provisioning on a host of its own, waiting for that host to come up. */
async function waitingForHost(l: Lab, id: string): Promise<string> {
  const booking = newBooking(dashboardBooking({ id, hostName: `boot${id}` }), new Date());
  await l.db.store.createBooking(booking);
  const input = {
    bookingId: id,
    hostName: booking.hostName,
    phase: "provision",
    generation: 1,
  } as const;
  const token = `boot-token-${id}`;
  l.engine.live.add(token);
  await l.db.store.updateBooking(
    id,
    allOf(
      beginProvisioning,
      registerWait(input, "host-up", token, new Date(), new Date(Date.now() + 3_600_000)),
    ),
  );
  return token;
}
