/**
 * The lab's watcher on its own: a FOG simulator with `hosts` hosts, the real store (dynalite)
 * holding bookings whose provision waits for their imaging, and a stand-in engine that records
 * how the watcher answers each task token. For the watcher's tests and the FOG-request benchmark.
 */
import { join } from "node:path";
import { FogClient } from "../../lib/adapters/fog/fog-client";
import type { Runtime } from "../../lib/app/runtime";
import { loadPharosConfig } from "../../lib/config/load";
import type { PharosConfig } from "../../lib/config/types";
import type { Booking } from "../../lib/domain/booking";
import { newHost } from "../../lib/domain/host";
import type { JsonObject } from "../../lib/domain/run";
import { allOf, recordDone } from "../../lib/lifecycle/checkpoints";
import { beginProvisioning, newBooking } from "../../lib/lifecycle/transitions";
import { registerWait } from "../../lib/lifecycle/waits";
import { silentLogger } from "../../lib/log";
import type { TokenAnswer, WorkflowEngine } from "../../lib/ports/engine";
import type { Imager } from "../../lib/ports/imager";
import { Secret } from "../../lib/secret";
import { type FogSim, type FogSimOptions, startFogSim } from "../../sim/fog-sim";
import { repoRoot } from "../../sim/lab";
import { dashboardBooking } from "./bookings";
import { startTestStore, type TestStore } from "./dynalite";

/** The engine as the watcher sees it: it records every answer; tokens it was told of are live. */
export class AnsweringEngine implements WorkflowEngine {
  readonly answers: { token: string; kind: string; detail: unknown }[] = [];
  readonly live = new Set<string>();
  /** Tokens whose every answer throws (the engine is unreachable for them). */
  readonly failing = new Set<string>();
  /** Called as a heartbeat comes in, before it is answered. */
  onHeartbeat: (token: string) => Promise<void> = async () => undefined;
  async start() {
    return { started: true };
  }
  async stop() {}
  async status() {
    return null;
  }
  #answer(token: string, kind: string, detail: unknown): TokenAnswer {
    if (this.failing.has(token)) throw new Error(`the engine could not be reached for ${token}`);
    this.answers.push({ token, kind, detail });
    if (!this.live.has(token)) return "gone";
    if (kind !== "heartbeat") this.live.delete(token);
    return "accepted";
  }
  async sendTaskSuccess(token: string, output: JsonObject) {
    return this.#answer(token, "success", output);
  }
  async sendTaskFailure(token: string, error: string, cause: string) {
    return this.#answer(token, "failure", { error, cause });
  }
  async sendTaskHeartbeat(token: string) {
    await this.onHeartbeat(token);
    return this.#answer(token, "heartbeat", null);
  }
  async history() {
    return null;
  }
  of(kind: string) {
    return this.answers.filter((a) => a.kind === kind);
  }
}

const TOKENS = { apiToken: "watcher-api", userToken: "watcher-user" };
export const WATCHER_LAB_IMAGE = 9;

export interface WatcherLab {
  fog: FogSim;
  db: TestStore;
  engine: AnsweringEngine;
  rt: Runtime;
  imager: Imager;
  config: PharosConfig;
  close(): Promise<void>;
}

export async function startWatcherLab(
  hosts: number,
  fogOptions: Partial<FogSimOptions> = {},
): Promise<WatcherLab> {
  const config = await loadPharosConfig(join(repoRoot, "conf", "pharos.yaml"));
  const fog = await startFogSim({
    ...TOKENS,
    timeScale: 120,
    startDelaySeconds: 1,
    // Every host at once: no queue.
    queueSize: hosts,
    hosts: Array.from({ length: hosts }, (_, i) => ({
      name: `pod${i + 1}`,
      mac: `52:54:00:00:${Math.floor(i / 256)
        .toString(16)
        .padStart(2, "0")}:${(i % 256).toString(16).padStart(2, "0")}`,
    })),
    images: [{ id: WATCHER_LAB_IMAGE, name: "clean", sizeGB: 4 }],
    ...fogOptions,
  });
  const db = await startTestStore();
  const engine = new AnsweringEngine();
  const imager = new FogClient(
    {
      server: fog.url,
      apiKey: new Secret(TOKENS.apiToken),
      userKey: new Secret(TOKENS.userToken),
      requestTimeoutSeconds: 30,
    },
    silentLogger,
  );
  const rt: Runtime = {
    config,
    store: db.store,
    dashboard: {
      listBookings: async () => [],
      bookingUser: async () => null,
      postStatusNote: async () => {},
    },
    engine,
    imagerFor: () => imager,
    power: { reboot: async () => ({ hostKey: "SHA256:x" }) },
    relay: null,
    directoryFor: () => {
      throw new Error("no directory here");
    },
    mailer: null,
    logger: silentLogger,
    now: () => new Date(),
  };
  return {
    fog,
    db,
    engine,
    rt,
    imager,
    config,
    close: async () => {
      await fog.close();
      await db.close();
    },
  };
}

/**
 * A booking provisioning on `host` whose deploy task was asked for (and the host network-booted
 * into it), waiting for its imaging under the token it answers; the token is live at the engine.
 */
export async function waitingForImaging(
  l: WatcherLab,
  host: string,
  index: number,
  deadline: Date,
): Promise<{ token: string; fogHostId: string }> {
  const fogHost = await l.imager.findHost(host);
  await l.imager.deploy(fogHost.id, WATCHER_LAB_IMAGE, `laas provision ${index}`);
  l.fog.networkBoot(host);
  await l.db.store.createHost({
    ...newHost(host, fogHost),
    state: "in-use",
    bookingId: `${index}`,
  });
  const booking: Booking = newBooking(
    dashboardBooking({ id: `${index}`, hostName: host, purpose: "watcher" }),
    new Date(),
  );
  await l.db.store.createBooking(booking);
  const input = {
    bookingId: booking.id,
    hostName: host,
    phase: "provision",
    generation: 1,
  } as const;
  const token = `token-${index}`;
  l.engine.live.add(token);
  await l.db.store.updateBooking(
    booking.id,
    allOf(
      beginProvisioning,
      recordDone(
        input,
        "startImaging",
        { fogHostId: fogHost.id, imageId: WATCHER_LAB_IMAGE, deployedBefore: fogHost.deployed },
        new Date(),
      ),
      registerWait(input, "imaged", token, new Date(), deadline),
    ),
  );
  return { token, fogHostId: fogHost.id };
}
