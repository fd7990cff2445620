/**
 * The jobs API's rules one by one, without a lab: which round a task listed at 0 is in (the 2019
 * and 2022 cleanups), what each task is answered from its bookings, and the posts' bookkeeping
 * (a status posted once, never moved back, a post for a round that moved on not recorded on the
 * new one, a job finished only once everything has ended).
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadPharosConfig } from "../lib/config/load";
import type { PharosConfig } from "../lib/config/types";
import type { Booking } from "../lib/domain/booking";
import { type Host, newHost } from "../lib/domain/host";
import { type JobRecord, type JobTaskRecord, jobKey } from "../lib/domain/job";
import { emptyAccess } from "../lib/lifecycle/access-transitions";
import { recordDone } from "../lib/lifecycle/checkpoints";
import { FAILURE_RECORD } from "../lib/lifecycle/failure-record";
import { powersOffAfterCleaning } from "../lib/lifecycle/imaging";
import { bookingsOfJob, jobBookingId } from "../lib/lifecycle/jobs/bookings";
import { emptyJob, takeTasks } from "../lib/lifecycle/jobs/intake";
import {
  answerFor,
  answerJob,
  type JobState,
  type JobsDeps,
  NO_SWITCH_ADAPTER,
  postAnswer,
} from "../lib/lifecycle/jobs/statuses";
import { cancel, newBooking, stampExpiry } from "../lib/lifecycle/transitions";
import { createLogger } from "../lib/log";
import type {
  AccessTask,
  HardwareTask,
  Job,
  JobsDashboard,
  SoftwareTask,
  StatusUpdate,
  Task,
} from "../lib/ports/jobs-dashboard";
import { Secret } from "../lib/secret";
import { startTestStore, type TestStore } from "./helpers/dynalite";

const REPO = join(import.meta.dirname, "..");
const NOW = new Date("2026-12-02T10:00:00.000Z");
const LAB = "sim-lab";

let config: PharosConfig;
let db: TestStore;
beforeAll(async () => {
  const shipped = await loadPharosConfig(join(REPO, "conf", "pharos.yaml"));
  config = {
    ...shipped,
    dashboardApi: "jobs",
    jobs: { lab: LAB, images: new Map([["5", 2]]) },
  };
  db = await startTestStore();
});
afterAll(async () => db?.close());

const hostId = () => config.inventory.hosts[0]!.resourceId;

function hardware(over: Partial<HardwareTask> = {}): HardwareTask {
  return {
    kind: "hardware",
    taskId: "hw-1",
    labToken: null,
    hostLabId: hostId(),
    imageId: "5",
    hostname: "pod-a",
    power: "on",
    ipmiCreate: false,
    ...over,
  };
}

function access(over: Partial<AccessTask> = {}): AccessTask {
  return {
    kind: "access",
    taskId: "vpn-1",
    labToken: null,
    accessType: "vpn",
    user: "7",
    revoke: false,
    sshKey: null,
    hosts: [],
    ...over,
  };
}

function software(over: Partial<SoftwareTask> = {}): SoftwareTask {
  return {
    kind: "software",
    taskId: "sw-1",
    labToken: null,
    installer: "Fuel",
    scenario: "os-nosdn-nofeature-ha",
    pdf: null,
    idf: null,
    roles: [],
    ...over,
  };
}

function job(tasks: Task[], id = 1): Job {
  return { id, tasks };
}

function taken(record: JobRecord, listing: "new" | "current", tasks: Task[]): JobRecord {
  return takeTasks(job(tasks, record.jobId), listing, NOW)(record) ?? record;
}

describe("the round of a task listed at 0", () => {
  it("is the provision when new, and stays it while not yet answered", () => {
    const first = taken(emptyJob(LAB, 1, NOW), "new", [hardware(), software()]);
    expect(first.tasks["hw-1"]?.round).toBe("provision");
    expect(first.tasks["sw-1"]?.round).toBe("provision");
    // Listed again before any status was posted (a poller stopped in between): nothing to take.
    expect(takeTasks(job([hardware(), software()]), "new", NOW)(first)).toBeNull();
  });

  it("is the cleanup once the lab answered it: the 2022 software task comes back unchanged", () => {
    const first = taken(emptyJob(LAB, 1, NOW), "new", [software()]);
    const answered: JobRecord = {
      ...first,
      tasks: {
        "sw-1": {
          ...first.tasks["sw-1"]!,
          posted: { status: 200 as const, at: NOW.toISOString() },
        },
      },
    };
    const again = taken(answered, "new", [software()]);
    expect(again.tasks["sw-1"]?.round).toBe("cleanup");
    expect(again.tasks["sw-1"]?.posted).toBeNull();
    expect(again.cleanupSince).toBe(NOW.toISOString());
    // The cleanup listed again is not taken again.
    expect(takeTasks(job([software()]), "new", NOW)(again)).toBeNull();
  });

  it("is the cleanup by its config: hardware powered off (2019: no image), access revoked", () => {
    const record = taken(emptyJob(LAB, 1, NOW), "new", [
      hardware({ power: "off", imageId: null }),
      access({ revoke: true }),
      software({ installer: null, scenario: null }),
    ]);
    expect(record.tasks["hw-1"]?.round).toBe("cleanup");
    expect(record.tasks["vpn-1"]?.round).toBe("cleanup");
    // A 2019 software cleanup looks like a provision with nothing to install.
    expect(record.tasks["sw-1"]?.round).toBe("provision");
  });

  it("is taken from jobs/current as under way (100) only when the store lacks it", () => {
    const adopted = taken(emptyJob(LAB, 1, NOW), "current", [hardware()]);
    expect(adopted.tasks["hw-1"]?.posted?.status).toBe(100);
    expect(takeTasks(job([hardware()]), "current", NOW)(adopted)).toBeNull();
  });

  it("reopens a finished job when a task comes back", () => {
    const first = taken(emptyJob(LAB, 1, NOW), "new", [access()]);
    const finished: JobRecord = {
      ...first,
      finishedAt: NOW.toISOString(),
      expiresAtEpochSeconds: 1,
      tasks: {
        "vpn-1": {
          ...first.tasks["vpn-1"]!,
          posted: { status: 200 as const, at: NOW.toISOString() },
        },
      },
    };
    const again = taken(finished, "new", [access({ revoke: true })]);
    expect(again.finishedAt).toBeNull();
    expect(again.expiresAtEpochSeconds).toBeNull();
  });
});

describe("a job's bookings", () => {
  it("are its hardware tasks, with the mapped FOG image, its user's key and host name", () => {
    const record = taken(emptyJob(LAB, 4, NOW), "new", [
      hardware(),
      access(),
      access({ taskId: "ssh-1", accessType: "ssh", sshKey: "ssh-ed25519 AAAA k", hosts: [] }),
      access({ taskId: "ssh-2", accessType: "ssh", user: "8", sshKey: "other", hosts: [] }),
      software(),
    ]);
    const [booking, ...rest] = bookingsOfJob(record, config);
    expect(rest).toEqual([]);
    expect(booking?.id).toBe(jobBookingId(4, hostId()));
    expect(booking?.hostName).toBe(config.inventory.hosts[0]!.name);
    expect(booking?.user).toBe("7");
    expect(booking?.installer).toBe("Fuel");
    expect(booking?.job).toEqual({
      jobId: 4,
      taskId: "hw-1",
      labImageId: "5",
      fogImageId: 2,
      hostname: "pod-a",
      sshKey: "ssh-ed25519 AAAA k",
      otherUsers: [],
      otherSshKeys: [{ user: "8", key: "other" }],
    });
    // An image id the mapping lacks leaves no FOG image (the booking is refused at poll).
    const unmapped = taken(emptyJob(LAB, 5, NOW), "new", [hardware({ imageId: "9" })]);
    expect(bookingsOfJob(unmapped, config)[0]?.job?.fogImageId).toBeNull();
    // A host the inventory lacks makes no booking.
    const foreign = taken(emptyJob(LAB, 6, NOW), "new", [hardware({ hostLabId: "nope" })]);
    expect(bookingsOfJob(foreign, config, createLogger({ level: "silent" }))).toEqual([]);
  });
});

/** A booking whose run 1 of `phase` failed imaging, the host left `host`, as recorded. */
function failedIn(phase: "provision" | "release", host: string): (b: Booking) => Booking {
  return (b) => {
    const failed: Booking = {
      ...b,
      state: "failed",
      ...(phase === "provision" ? { provisionGeneration: 1 } : { releaseGeneration: 1 }),
    };
    const record = { step: "AwaitImaging", error: "ImagingFailed", host, field: null };
    const input = { bookingId: b.id, hostName: b.hostName, phase, generation: 1 };
    return recordDone(input, FAILURE_RECORD, record, NOW)(failed) ?? failed;
  };
}

/** A job with its one booking at `state`. */
function stateWith(tasks: Task[], change: (b: Booking) => Booking): JobState {
  const record = taken(emptyJob(LAB, 9, NOW), "new", tasks);
  const from = bookingsOfJob(record, config)[0]!;
  const booking = change(newBooking(from, NOW));
  return {
    record,
    bookings: new Map([["hw-1", booking]]),
    unknownHosts: new Set(),
    hosts: new Map(),
  };
}

function deps(jobs: JobsDashboard = recordingJobs().jobs): JobsDeps {
  return {
    config,
    store: db.store,
    logger: createLogger({ level: "silent" }),
    now: () => NOW,
    jobs,
  };
}

function answer(state: JobState, taskId: string) {
  return answerFor(deps(), state, state.record.tasks[taskId] as JobTaskRecord);
}

describe("what a task is answered", () => {
  const tasks = () => [hardware(), access(), software()];

  it("nothing while its booking waits, 100 while it is provisioned", () => {
    expect(
      answer(
        stateWith(tasks(), (b) => b),
        "hw-1",
      ),
    ).toBeNull();
    const provisioning = stateWith(tasks(), (b) => ({ ...b, state: "provisioning" }));
    expect(answer(provisioning, "hw-1")?.status).toBe(100);
    expect(answer(provisioning, "sw-1")?.status).toBe(100);
    expect(answer(provisioning, "vpn-1")?.status).toBe(100);
  });

  it("ready: the software 200; hardware and vpn left to the hand-over (their passwords)", () => {
    const ready = stateWith(tasks(), (b) => ({ ...b, state: "ready" }));
    expect(answer(ready, "sw-1")).toMatchObject({ status: 200 });
    expect(answer(ready, "hw-1")).toBeNull();
    expect(answer(ready, "vpn-1")).toBeNull();
    // Without a hand-over section there is nothing secret: the host's 200 is posted here.
    const noHandover = answerFor(
      { ...deps(), config: { ...config, handover: null } },
      ready,
      ready.record.tasks["hw-1"]!,
    );
    expect(noHandover?.status).toBe(200);
  });

  it("300 with the reason when the booking failed, for every task of the job", () => {
    const failed = stateWith(tasks(), (b) => ({ ...b, state: "failed", failure: "x" }));
    for (const id of ["hw-1", "sw-1", "vpn-1"]) {
      expect(answer(failed, id)?.status).toBe(300);
      expect(answer(failed, id)?.message).toContain("could not be provisioned");
    }
  });

  it("network and snapshot 300 (never a silent 200); another user's VPN left to the hand-over", () => {
    const state = stateWith(
      [
        ...tasks(),
        { kind: "network", taskId: "net-1", labToken: null, hosts: [] },
        {
          kind: "snapshot",
          taskId: "snap-1",
          labToken: null,
          hostLabId: null,
          imageId: null,
          dashboardId: 1,
        },
        access({ taskId: "vpn-2", user: "8" }),
      ],
      (b) => ({ ...b, state: "ready" }),
    );
    // With the job's lab token: what tells it answered, should the store lose the record.
    expect(answer(state, "net-1")).toEqual({
      status: 300,
      message: NO_SWITCH_ADAPTER,
      labToken: "job-9",
    });
    expect(answer(state, "snap-1")?.status).toBe(300);
    // Another user's account is the hand-over's too (its password); before it, 100 like any.
    expect(answer(state, "vpn-2")).toBeNull();
  });

  it("an ssh key not installed is 300, an installed one 200 with its fingerprint", () => {
    const ssh = access({ taskId: "ssh-1", accessType: "ssh", sshKey: "k" });
    const withKey = (sshKey: string) =>
      stateWith([hardware(), access(), ssh], (b) => ({
        ...b,
        state: "ready",
        access: { ...(b.access ?? ({} as NonNullable<Booking["access"]>)), sshKey },
      }));
    expect(answer(withKey("installed SHA256:abc"), "ssh-1")).toMatchObject({
      status: 200,
      message: expect.stringContaining("SHA256:abc"),
    });
    expect(answer(withKey("refused: not a key"), "ssh-1")?.status).toBe(300);
    // Another user's key: what became of theirs, not of the job user's.
    const theirs = access({ taskId: "ssh-2", accessType: "ssh", user: "8", sshKey: "k2" });
    const withTheirs = (outcome: string) =>
      stateWith([hardware(), access(), ssh, theirs], (b) => ({
        ...b,
        state: "ready",
        access: {
          ...(b.access ?? ({} as NonNullable<Booking["access"]>)),
          sshKey: "installed SHA256:own",
          otherSshKeys: { "8": outcome },
        },
      }));
    expect(answer(withTheirs("installed SHA256:theirs"), "ssh-2")?.message).toContain(
      "SHA256:theirs",
    );
    expect(answer(withTheirs("refused: not a key"), "ssh-2")?.status).toBe(300);
  });

  it("a host the inventory lacks: its hardware task 300, its cleanup 200", () => {
    const record = taken(emptyJob(LAB, 9, NOW), "new", [hardware({ hostLabId: "nope" })]);
    const state: JobState = {
      record,
      bookings: new Map([["hw-1", null]]),
      unknownHosts: new Set(["hw-1"]),
      hosts: new Map(),
    };
    expect(answer(state, "hw-1")?.status).toBe(300);
    const cleanup = taken(
      {
        ...record,
        tasks: {
          "hw-1": {
            ...record.tasks["hw-1"]!,
            posted: { status: 300 as const, at: NOW.toISOString() },
          },
        },
      },
      "new",
      [hardware({ hostLabId: "nope", power: "off" })],
    );
    expect(answer({ ...state, record: cleanup }, "hw-1")?.status).toBe(200);
  });

  it("cleanup: 100 while released, 200 once reimaged, 300 when the release failed", () => {
    const cleaning = (change: (b: Booking) => Booking) => {
      const state = stateWith([hardware()], change);
      const record = taken(
        {
          ...state.record,
          tasks: {
            "hw-1": {
              ...state.record.tasks["hw-1"]!,
              posted: { status: 200 as const, at: NOW.toISOString() },
            },
          },
        },
        "new",
        [hardware({ power: "off" })],
      );
      return { ...state, record };
    };
    expect(
      answer(
        cleaning((b) => ({ ...b, state: "releasing" })),
        "hw-1",
      )?.status,
    ).toBe(100);
    expect(
      answer(
        cleaning((b) => ({ ...b, state: "released", releaseGeneration: 1 })),
        "hw-1",
      ),
    ).toMatchObject({
      status: 200,
      message: expect.stringContaining("reimaged clean"),
    });
    const releaseFailed = cleaning(failedIn("release", "quarantined"));
    expect(answer(releaseFailed, "hw-1")?.status).toBe(300);
  });
});

function recordingJobs(fail = 0): { jobs: JobsDashboard; posts: StatusUpdate[] } {
  const posts: StatusUpdate[] = [];
  let failing = fail;
  return {
    posts,
    jobs: {
      lab: LAB,
      listJobs: async () => [],
      getJob: async () => {
        throw new Error("unused");
      },
      getTask: async () => {
        throw new Error("unused");
      },
      postStatus: async (_job, _task, update) => {
        if (failing-- > 0) throw new Error("dashboard down");
        posts.push(update);
      },
    },
  };
}

describe("the posts", () => {
  it("post a status once, record it, and never move a task back", async () => {
    const record = taken(emptyJob(LAB, 20, NOW), "new", [software()]);
    await db.store.createJob(record);
    const { jobs, posts } = recordingJobs();
    let current = await postAnswer(deps(jobs), record, "sw-1", { status: 200, message: "done" });
    expect(current.tasks["sw-1"]?.posted?.status).toBe(200);
    expect(current.tasks["sw-1"]?.posting).toBeNull();
    // A 100 after it (a poller that read the booking before it was ready) is not posted.
    current = await postAnswer(deps(jobs), current, "sw-1", { status: 100, message: "late" });
    expect(current.tasks["sw-1"]?.posted?.status).toBe(200);
    expect(posts.map((p) => p.status)).toEqual([200]);
  });

  it("one post of a task at a time: a slow older answer never lands after a newer one", async () => {
    const record = taken(emptyJob(LAB, 25, NOW), "new", [software()]);
    await db.store.createJob(record);
    const { jobs, posts } = recordingJobs();
    const slow: JobsDashboard = {
      ...jobs,
      postStatus: async (job, task, update) => {
        if (update.status === 100) await new Promise((resolve) => setTimeout(resolve, 400));
        await jobs.postStatus(job, task, update);
      },
    };
    const started = postAnswer(deps(slow), record, "sw-1", { status: 100, message: "started" });
    await new Promise((resolve) => setTimeout(resolve, 50));
    await postAnswer(deps(slow), record, "sw-1", { status: 200, message: "done" });
    await started;
    expect(posts.map((p) => p.status)).toEqual([100, 200]);
    expect((await db.store.getJob(record.key))?.tasks["sw-1"]?.posted?.status).toBe(200);
  });

  it("a lease left by a poster that stopped is taken over once it ran out", async () => {
    const record = taken(emptyJob(LAB, 26, NOW), "new", [software()]);
    const left = (until: Date): JobRecord => ({
      ...record,
      tasks: {
        "sw-1": { ...record.tasks["sw-1"]!, posting: { by: "gone", until: until.toISOString() } },
      },
    });
    await db.store.createJob(left(new Date(NOW.getTime() - 1)));
    const { jobs, posts } = recordingJobs();
    await postAnswer(deps(jobs), record, "sw-1", { status: 200, message: "done" });
    expect(posts).toHaveLength(1);
    // One still running: the post waits for it, then gives up, to be posted again later.
    const held = taken(emptyJob(LAB, 27, NOW), "new", [software()]);
    await db.store.createJob({
      ...held,
      tasks: {
        "sw-1": {
          ...held.tasks["sw-1"]!,
          posting: { by: "busy", until: new Date(NOW.getTime() + 60_000).toISOString() },
        },
      },
    });
    await expect(
      postAnswer(deps(jobs), held, "sw-1", { status: 200, message: "done" }),
    ).rejects.toThrow(/another status post of it is under way/);
    expect(posts).toHaveLength(1);
  }, 15_000);

  it("a failed post is recorded with its reason and thrown; answerJob posts again later", async () => {
    const record = taken(emptyJob(LAB, 21, NOW), "new", [
      { kind: "network", taskId: "net-1", labToken: null, hosts: [] },
    ]);
    await db.store.createJob(record);
    const { jobs, posts } = recordingJobs(1);
    const first = await answerJob(deps(jobs), record);
    expect(first.errors).toHaveLength(1);
    const stored = await db.store.getJob(jobKey(LAB, 21));
    expect(stored?.tasks["net-1"]?.postError).toBe("dashboard down");
    const second = await answerJob(deps(jobs), stored!);
    expect(second.posted).toEqual(["21/net-1 300"]);
    // Answered: asked again, nothing is posted.
    const third = await answerJob(deps(jobs), (await db.store.getJob(jobKey(LAB, 21)))!);
    expect(third.posted).toEqual([]);
    expect(posts).toHaveLength(1);
    expect((await db.store.getJob(jobKey(LAB, 21)))?.tasks["net-1"]?.postError).toBeNull();
  });

  it("a post for a round that moved on is not recorded on the new round", async () => {
    const record = taken(emptyJob(LAB, 22, NOW), "new", [software()]);
    await db.store.createJob(record);
    // The cleanup is taken while the provision's post is under way.
    const { jobs } = recordingJobs();
    const racing: JobsDashboard = {
      ...jobs,
      postStatus: async (job, task, update) => {
        await db.store.updateJob(jobKey(LAB, 22), (r) =>
          takeTasks(
            { id: 22, tasks: [software()] },
            "new",
            NOW,
          )({
            ...r,
            tasks: {
              "sw-1": {
                ...r.tasks["sw-1"]!,
                posted: { status: 100 as const, at: NOW.toISOString() },
              },
            },
          }),
        );
        await jobs.postStatus(job, task, update);
      },
    };
    const after = await postAnswer(deps(racing), record, "sw-1", { status: 200, message: "done" });
    expect(after.tasks["sw-1"]?.round).toBe("cleanup");
    expect(after.tasks["sw-1"]?.posted).toBeNull();
  });

  it("a job whose hardware task has not come back for cleanup is not finished", async () => {
    const base = taken(emptyJob(LAB, 24, NOW), "new", [hardware(), access()]);
    const answered = (t: JobTaskRecord): JobTaskRecord => ({
      ...t,
      posted: { status: 200, at: NOW.toISOString() },
    });
    // The VPN revoke came first and was answered; the hardware task is still the provision's.
    const revoked = taken(
      {
        ...base,
        tasks: { "hw-1": answered(base.tasks["hw-1"]!), "vpn-1": answered(base.tasks["vpn-1"]!) },
      },
      "new",
      [access({ revoke: true })],
    );
    const record = {
      ...revoked,
      tasks: { ...revoked.tasks, "vpn-1": answered(revoked.tasks["vpn-1"]!) },
    };
    expect(record.cleanupSince).not.toBeNull();
    await db.store.createJob(record);
    await answerJob(deps(), record);
    expect((await db.store.getJob(record.key))?.finishedAt).toBeNull();
  });

  it("a job is finished only once its cleanup is answered and its bookings have ended", async () => {
    const base = taken(emptyJob(LAB, 23, NOW), "new", [hardware()]);
    const posted = {
      ...base,
      tasks: {
        "hw-1": { ...base.tasks["hw-1"]!, posted: { status: 200 as const, at: NOW.toISOString() } },
      },
    };
    const record = taken(posted, "new", [hardware({ power: "off" })]);
    await db.store.createJob(record);
    const from = bookingsOfJob(record, config)[0]!;
    const booking = { ...newBooking(from, NOW), state: "releasing" as const };
    await db.store.createBooking(booking);
    const { jobs } = recordingJobs();
    await answerJob(deps(jobs), record);
    expect((await db.store.getJob(record.key))?.finishedAt).toBeNull();
    await db.store.updateBooking(booking.id, (b) => ({
      ...b,
      state: "released",
      releaseGeneration: 1,
    }));
    await answerJob(deps(jobs), (await db.store.getJob(record.key))!);
    const finished = await db.store.getJob(record.key);
    expect(finished?.finishedAt).toBe(NOW.toISOString());
    expect(finished?.expiresAtEpochSeconds).toBeGreaterThan(NOW.getTime() / 1000);
  });
});

describe("power at the end of a job's booking", () => {
  it("is off after the clean image only for a job's host its BMC can start again", () => {
    const record = taken(emptyJob(LAB, 40, NOW), "new", [hardware()]);
    const jobBooking = newBooking(bookingsOfJob(record, config)[0]!, NOW);
    const host = config.inventory.hosts[0]!;
    const ipmi = {
      ...config,
      inventory: {
        ...config.inventory,
        hosts: config.inventory.hosts.map((h) =>
          h === host
            ? {
                ...h,
                power: {
                  type: "ipmi" as const,
                  ipmi: { address: "10.0.0.9", user: "admin", password: new Secret("x", "test") },
                },
              }
            : h,
        ),
      },
    };
    const input = (phase: "provision" | "release") => ({
      bookingId: jobBooking.id,
      hostName: host.name,
      phase,
      generation: 1,
    });
    expect(powersOffAfterCleaning({ config: ipmi }, jobBooking, input("release"))).toBe(true);
    // Not while provisioning, not for a booking of the bookings API, not over SSH.
    expect(powersOffAfterCleaning({ config: ipmi }, jobBooking, input("provision"))).toBe(false);
    expect(
      powersOffAfterCleaning({ config: ipmi }, { ...jobBooking, job: null }, input("release")),
    ).toBe(false);
    expect(powersOffAfterCleaning({ config }, jobBooking, input("release"))).toBe(false);
  });
});

describe("a job's booking that ended before its job", () => {
  it("gets no expiry until the job's cleanup gives it an end (the job still lists it)", () => {
    const record = taken(emptyJob(LAB, 41, NOW), "new", [hardware()]);
    const booking = newBooking(bookingsOfJob(record, config)[0]!, NOW);
    const retention = { now: NOW, retentionDays: 30 };
    const cancelled = cancel("cancelled", retention)(booking)!;
    expect(cancelled.state).toBe("cancelled");
    expect(cancelled.expiresAtEpochSeconds).toBeNull();
    expect(stampExpiry(30)(cancelled)).toBeNull();
    // The cleanup came: its end is known, and the sweep stamps its expiry.
    const ended = { ...cancelled, end: NOW.toISOString() };
    expect(stampExpiry(30)(ended)?.expiresAtEpochSeconds).toBeGreaterThan(NOW.getTime() / 1000);
    // A booking of the bookings API expires as it always did.
    expect(cancel("x", retention)({ ...booking, job: null })?.expiresAtEpochSeconds).not.toBeNull();
  });
});

describe("what the review found", () => {
  it("the job's user is the first VPN task's as first listed, whatever order the store keeps", () => {
    const first = taken(emptyJob(LAB, 50, NOW), "new", [
      hardware(),
      access({ taskId: "vpn-a", user: "7" }),
      access({ taskId: "vpn-b", user: "8" }),
    ]);
    expect(first.owner).toBe("7");
    // The same record read back with its tasks in another order: the same user.
    const reordered: JobRecord = {
      ...first,
      tasks: Object.fromEntries(Object.entries(first.tasks).reverse()),
    };
    expect(bookingsOfJob(reordered, config)[0]?.user).toBe("7");
    expect(bookingsOfJob(reordered, config)[0]?.job?.otherUsers).toEqual(["8"]);
    // Taking more tasks later never changes it.
    const later = taken(first, "new", [access({ taskId: "vpn-c", user: "9" })]);
    expect(later.owner).toBe("7");
    // A job with no VPN task has none: no account is made for its bookings themselves.
    const sshOnly = taken(emptyJob(LAB, 51, NOW), "new", [
      hardware(),
      access({ taskId: "ssh-1", accessType: "ssh", sshKey: "k" }),
    ]);
    expect(sshOnly.owner).toBeNull();
    expect(bookingsOfJob(sshOnly, config)[0]?.job?.otherSshKeys).toEqual([{ user: "7", key: "k" }]);
  });

  it("a task at 0 with a lab token was answered before: its cleanup, even with no record", () => {
    const record = taken(emptyJob(LAB, 52, NOW), "new", [software({ labToken: "job-52" })]);
    expect(record.tasks["sw-1"]?.round).toBe("cleanup");
  });

  it("a cleanup re-issue a late post moved to 100 is taken from jobs/current", () => {
    const first = taken(emptyJob(LAB, 53, NOW), "new", [hardware(), software()]);
    // Held as the provision; listed at 100 with its cleanup config.
    const again = taken(first, "current", [hardware({ power: "off" }), software()]);
    expect(again.tasks["hw-1"]?.round).toBe("cleanup");
    expect(again.tasks["hw-1"]?.posted).toBeNull();
    expect(again.cleanupSince).toBe(NOW.toISOString());
    // The software task's config says nothing: it stays as held.
    expect(again.tasks["sw-1"]?.round).toBe("provision");
    // Missing from the store: taken in the round its config says.
    const lost = taken(emptyJob(LAB, 54, NOW), "current", [hardware({ power: "off" })]);
    expect(lost.tasks["hw-1"]).toMatchObject({ round: "cleanup", posted: { status: 100 } });
  });

  it("a new round keeps the lease of a post of the round before still under way", () => {
    const first = taken(emptyJob(LAB, 55, NOW), "new", [hardware()]);
    const posting = { by: "slow", until: new Date(NOW.getTime() + 60_000).toISOString() };
    const leased: JobRecord = {
      ...first,
      tasks: {
        "hw-1": {
          ...first.tasks["hw-1"]!,
          posted: { status: 100, at: NOW.toISOString() },
          posting,
        },
      },
    };
    expect(taken(leased, "new", [hardware({ power: "off" })]).tasks["hw-1"]?.posting).toEqual(
      posting,
    );
  });

  const cleanupOf = (change: (b: Booking) => Booking, host?: Host | null): JobState => {
    const state = stateWith([hardware(), access()], change);
    const answered = (t: JobTaskRecord): JobTaskRecord => ({
      ...t,
      posted: { status: 300, at: NOW.toISOString() },
    });
    const record = taken(
      {
        ...state.record,
        tasks: Object.fromEntries(
          Object.entries(state.record.tasks).map(([id, t]) => [id, answered(t)]),
        ),
      },
      "new",
      [hardware({ power: "off" }), access({ revoke: true })],
    );
    const name = config.inventory.hosts[0]!.name;
    return { ...state, record, hosts: new Map(host === undefined ? [] : [[name, host]]) };
  };
  const quarantinedFailure = failedIn("provision", "quarantined");

  it("a failed job whose host was quarantined is not answered clean; freed by an operator, it is", () => {
    const host = newHost(config.inventory.hosts[0]!.name, null);
    const out = cleanupOf(quarantinedFailure, { ...host, state: "quarantined" });
    expect(answer(out, "hw-1")).toMatchObject({
      status: 300,
      message: expect.stringContaining("out of service"),
    });
    const freed = cleanupOf(quarantinedFailure, { ...host, state: "free" });
    expect(answer(freed, "hw-1")).toMatchObject({
      status: 200,
      message: expect.stringContaining("cleaned by the lab's operators"),
    });
    // A failure that never touched the host: nothing to clean.
    const untouched = cleanupOf((b) => ({ ...b, state: "failed" }));
    expect(answer(untouched, "hw-1")?.message).toContain("never imaged");
  });

  it("VPN access is answered revoked only once no booking of the job holds an account", () => {
    const holding = cleanupOf((b) => ({
      ...b,
      state: "released",
      releaseGeneration: 1,
      access: { ...emptyAccess(), vpnPerson: "some person" },
    }));
    expect(answer(holding, "vpn-1")?.status).toBe(100);
    const letGo = cleanupOf((b) => ({
      ...b,
      state: "released",
      releaseGeneration: 1,
      access: emptyAccess(),
    }));
    expect(answer(letGo, "vpn-1")?.status).toBe(200);
  });

  it("a job whose host's cleanup is at 300 is not finished", async () => {
    const base = taken(emptyJob(LAB, 56, NOW), "new", [hardware()]);
    const record = taken(
      {
        ...base,
        tasks: {
          "hw-1": { ...base.tasks["hw-1"]!, posted: { status: 300, at: NOW.toISOString() } },
        },
      },
      "new",
      [hardware({ power: "off" })],
    );
    const stuck: JobRecord = {
      ...record,
      tasks: {
        "hw-1": { ...record.tasks["hw-1"]!, posted: { status: 300, at: NOW.toISOString() } },
      },
    };
    await db.store.createJob(stuck);
    await answerJob(deps(), stuck);
    expect((await db.store.getJob(stuck.key))?.finishedAt).toBeNull();
  });
});
