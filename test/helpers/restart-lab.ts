import { join } from "node:path";
import { EqualityFilter } from "ldapts";
import { expect } from "vitest";
import { stepHandlers } from "../../functions/steps";
import { main } from "../../lib/cli/main";
import type { Booking } from "../../lib/domain/booking";
import { bookingAt } from "../../sim/dashboard-sim";
import type { SimulatedLab, SimulatedLabHost } from "../../sim/lab";
import type { RunningSlapd } from "../../sim/slapd";
import type { TestSmtpServer } from "../../sim/smtp";
import { generateSshKey } from "../../sim/sshd";
import { startHandoverLab } from "./handover-lab";
import { bookingUntil, type ListenerProcess, startListenerProcess } from "./listener-process";
import { waitFor } from "./wait";

export const USER_ID = 1;
export const USER_NAME = "ada";

export interface RestartLab {
  lab: SimulatedLab;
  slapd: RunningSlapd;
  smtp: TestSmtpServer;
  database: string;
  close(): Promise<void>;
}

export async function startRestartLab(): Promise<RestartLab> {
  const services = await startHandoverLab({
    name: "laas-restart",
    lab: { polling: 1, installerMs: 1_500, imagedBootMs: 600 },
  });
  const { lab } = services;
  const key = await generateSshKey("ada@laptop");
  lab.dashboard.addUser({
    id: USER_ID,
    username: USER_NAME,
    email: "ada@example.org",
    ssh_public_key: key.publicKey,
  });
  const quiet = () => undefined;
  const code = await main(["node", "laas", "reset-db", "--host", "--config", lab.configPath], {
    handlers: stepHandlers,
    out: quiet,
    err: quiet,
  });
  expect(code).toBe(0);
  return { ...services, database: join(services.workDir, "db") };
}

export type Interruption = "kill" | "drain";

/** What a scenario's trigger is given: the lab, the booking, and the one way to interrupt. */
export interface TriggerContext {
  lab: SimulatedLab;
  smtp: TestSmtpServer;
  host: SimulatedLabHost;
  bookingId: string;
  /** True once the booking's release has begun (the test ended it on the dashboard). */
  releasing(): boolean;
  /** The listener running now. */
  listener(): ListenerProcess;
  /** Interrupts the running listener, once; later calls do nothing. */
  interrupt(): void;
}

export interface Scenario {
  name: string;
  /** The phase the interruption comes in. */
  phase: "provision" | "release";
  /** Arms the trigger (a simulator hook, or a watch on the store) that calls interrupt(). */
  arm(context: TriggerContext): void;
  /** After the interruption, before the next listener starts (e.g. the mail server is back). */
  afterInterrupt?(context: TriggerContext): void;
}

export interface Counted {
  deployTasks: { provision: number; release: number };
  reboots: number;
  installerLaunches: number;
  vpnEntriesAtReady: string[];
  handoverMails: number;
  interruptedAt: string;
}

/** Polls the running listener's store until the booking passes `test`, then calls `then`. */
export function whenBooking(
  context: TriggerContext,
  test: (booking: Booking) => boolean,
  then: () => void,
): void {
  void (async () => {
    for (let tries = 0; tries < 2_000; tries++) {
      try {
        const booking = await context.listener().store.getBooking(context.bookingId);
        if (booking && test(booking)) {
          then();
          return;
        }
      } catch {
        // The listener is between processes: look again.
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
}

/**
 * Books `host` now, runs a listener until the scenario's trigger interrupts it, starts the next
 * listener, and follows the booking to ready (hand-over delivered) and, once ended on the
 * dashboard, to released. Answers what the simulators counted for this booking.
 */
export async function runScenario(
  r: RestartLab,
  scenario: Scenario,
  interruption: Interruption,
  bookingId: number,
  host: SimulatedLabHost,
): Promise<Counted> {
  const { lab, smtp } = r;
  const id = String(bookingId);
  const marks = {
    reboots: lab.hosts.reboots.length,
    commands: lab.hostCommands(host.name).length,
    mails: smtp.messages.length,
  };
  const now = Date.now();
  lab.dashboard.addBooking(
    bookingAt({
      id: bookingId,
      resource_id: Number(host.resourceId),
      start: new Date(now - 1_000),
      end: new Date(now + 3_600_000),
      installer_name: "Fuel",
      scenario_name: "os-nosdn-nofeature-ha",
      purpose: `restart: ${scenario.name}`,
      user: USER_ID,
    }),
  );
  let current = await startListenerProcess({ configPath: lab.configPath, database: r.database });
  let releasing = false;
  let interruptedAt = "";
  let interrupt!: () => void;
  const interrupted = new Promise<void>((resolve) => {
    interrupt = () => {
      if (interruptedAt) return;
      interruptedAt = new Date().toISOString();
      if (interruption === "kill") current.killNow();
      else process.kill(current.pid, "SIGTERM");
      resolve();
    };
  });
  const context: TriggerContext = {
    lab,
    smtp,
    host,
    bookingId: id,
    releasing: () => releasing,
    listener: () => current,
    interrupt: () => interrupt(),
  };
  scenario.arm(context);
  let vpnEntriesAtReady: string[] = [];

  const readyAndDelivered = async (listener: ListenerProcess) => {
    await bookingUntil(
      listener,
      id,
      "ready, hand-over delivered",
      (b) => b.state === "ready" && b.access?.handover === "delivered",
    );
    vpnEntriesAtReady = await vpnEntriesOf(r.slapd, id);
  };
  const release = () => {
    releasing = true;
    lab.dashboard.removeBooking(bookingId);
  };
  const restart = async () => {
    await waitFor(
      `the interruption (${scenario.name})`,
      () => (interruptedAt ? true : undefined),
      60_000,
    );
    await interrupted;
    const ended = await current.process.exited;
    if (interruption === "drain") {
      // A drain exits cleanly, saying what it handed over (on stderr: its stdout is the JSON log).
      expect(ended.code, ended.stderr).toBe(0);
      expect(ended.stderr).toMatch(/listener stopped: \d+ workflow\(s\) finished, \d+ handed over/);
    } else {
      expect(ended.signal).toBe("SIGKILL");
    }
    scenario.afterInterrupt?.(context);
    current = await startListenerProcess({ configPath: lab.configPath, database: r.database });
  };

  try {
    if (scenario.phase === "provision") {
      await restart();
      await readyAndDelivered(current);
      release();
    } else {
      await readyAndDelivered(current);
      release();
      await restart();
    }
    await bookingUntil(current, id, "released", (b) => b.state === "released");
  } finally {
    await current.stop();
  }
  const named = (phase: string) =>
    lab.fog.tasks().filter((t) => t.name === `laas ${phase} booking ${id}`).length;
  return {
    deployTasks: { provision: named("provision"), release: named("release") },
    reboots: lab.hosts.reboots.slice(marks.reboots).filter((x) => x.host === host.name).length,
    installerLaunches: lab
      .hostCommands(host.name)
      .slice(marks.commands)
      .filter((argv) => argv[0] === "setsid").length,
    vpnEntriesAtReady,
    handoverMails: smtp.messages.slice(marks.mails).filter((m) => m.to.includes("ada@example.org"))
      .length,
    interruptedAt,
  };
}

/** The uids of the directory entries marked as made for the booking. */
async function vpnEntriesOf(slapd: RunningSlapd, bookingId: string): Promise<string[]> {
  const admin = await slapd.adminClient();
  try {
    const { searchEntries } = await admin.search(slapd.usersBase, {
      scope: "one",
      filter: new EqualityFilter({
        attribute: "description",
        value: `laas-managed booking=${bookingId}`,
      }),
    });
    return searchEntries.map((entry) => String(entry.uid));
  } finally {
    await admin.unbind();
  }
}

/** What every interrupted booking must come to, counted at the simulators. */
export function expectOneOfEverything(counted: Counted): void {
  expect(counted.interruptedAt).not.toBe("");
  expect(counted.deployTasks).toEqual({ provision: 1, release: 1 });
  expect(counted.reboots).toBe(2);
  expect(counted.installerLaunches).toBe(1);
  expect(counted.vpnEntriesAtReady).toEqual([USER_NAME]);
  expect(counted.handoverMails).toBe(1);
}

// ---- the points of a booking a listener is interrupted at ----------------------------------

const task = (phase: string, id: string) => `laas ${phase} booking ${id}`;

export const imagingQueued: Scenario = {
  name: "imaging queued (the deploy task just created)",
  phase: "provision",
  arm: (c) =>
    c.lab.fog.onTaskChange((t) => {
      if (t.name === task("provision", c.bookingId) && t.stateId === 1) c.interrupt();
    }),
};

export const imagingInProgress: Scenario = {
  name: "imaging in progress",
  phase: "provision",
  arm: (c) =>
    c.lab.fog.onTaskChange((t) => {
      if (t.name === task("provision", c.bookingId) && t.stateId === 3) c.interrupt();
    }),
};

export const waitingForBoot: Scenario = {
  name: "waiting for the host to boot",
  phase: "provision",
  arm: (c) =>
    whenBooking(
      c,
      (b) => b.wait?.event === "host-up" && b.wait.outcome === null,
      () => c.interrupt(),
    ),
};

export const podBuild: Scenario = {
  name: "building the pod",
  phase: "provision",
  arm: (c) =>
    c.lab.hosts.onCommand((host, argv) => {
      if (host === c.host.name && argv.includes("net-define") && !c.releasing()) c.interrupt();
    }),
};

export const installerLaunched: Scenario = {
  name: "the installer just launched (not yet recorded)",
  phase: "provision",
  arm: (c) =>
    c.lab.hosts.onCommand((host, argv) => {
      if (host === c.host.name && argv[0] === "setsid") c.interrupt();
    }),
};

export const installerRunning: Scenario = {
  name: "waiting for the installer",
  phase: "provision",
  arm: (c) =>
    whenBooking(
      c,
      (b) => b.wait?.event === "installer-done" && b.wait.outcome === null,
      () => c.interrupt(),
    ),
};

export const settingAccess: Scenario = {
  name: "setting access (root password and key)",
  phase: "provision",
  arm: (c) => {
    // CreateVpnUser looks the user up first, SetHostAccess second.
    let lookups = 0;
    c.lab.dashboard.onRequest(({ method, path }) => {
      if (method === "GET" && path === `/api/users/${USER_ID}/` && !c.releasing()) {
        lookups += 1;
        if (lookups === 2) c.interrupt();
      }
    });
  },
};

export const handoverPending: Scenario = {
  name: "hand-over pending (the mail server defers)",
  phase: "provision",
  arm: (c) => {
    c.smtp.rejectNext(100, { code: 451, stage: "rcpt" });
    const rejectedBefore = c.smtp.rejected;
    whenBooking(
      c,
      (b) =>
        b.state === "ready" && b.access?.handover === "pending" && c.smtp.rejected > rejectedBefore,
      () => c.interrupt(),
    );
  },
  afterInterrupt: (c) => c.smtp.acceptAll(),
};

export const podRemoval: Scenario = {
  name: "removing the pod",
  phase: "release",
  arm: (c) =>
    c.lab.hosts.onCommand((host, argv) => {
      if (host === c.host.name && c.releasing() && argv.includes("undefine")) c.interrupt();
    }),
};

export const cleanImagingInProgress: Scenario = {
  name: "clean imaging in progress",
  phase: "release",
  arm: (c) =>
    c.lab.fog.onTaskChange((t) => {
      if (t.name === task("release", c.bookingId) && t.stateId === 3) c.interrupt();
    }),
};

export const cleanImagingJustCompleted: Scenario = {
  name: "clean imaging just completed (before the watcher saw it)",
  phase: "release",
  arm: (c) =>
    c.lab.onDeployed((host) => {
      if (host === c.host.name && c.releasing()) c.interrupt();
    }),
};
