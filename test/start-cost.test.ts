/**
 * What starting a due booking costs the store, counted at its endpoint (dynamo-counter.ts): the
 * poll's claim is written on the host it just read, and the local engine writes each state it
 * enters on the execution record it holds, so neither reads an item only to write it. On the
 * embedded default every request is CPU on the machine that starts the bookings.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DynamoDbExecutionJournal } from "../lib/adapters/aws/dynamodb-journal";
import { DynamoDbStore } from "../lib/adapters/aws/dynamodb-store";
import { createDynamoClient } from "../lib/adapters/aws/dynamodb-tables";
import { LocalEngine, type StepHandler } from "../lib/adapters/local/local-engine";
import { newHost } from "../lib/domain/host";
import { poll } from "../lib/lifecycle/poll";
import { newBooking } from "../lib/lifecycle/transitions";
import { silentLogger } from "../lib/log";
import type { PhaseInput, WorkflowEngine } from "../lib/ports/engine";
import { dashboardBooking } from "./helpers/bookings";
import { startTestStore, type TestStore } from "./helpers/dynalite";
import { type CountingProxy, startCountingProxy } from "./helpers/dynamo-counter";
import { ListedBookings, POLL_LAB } from "./helpers/poll-lab";
import { waitFor } from "./helpers/wait";

const DUE = 5;

describe("starting a due booking", () => {
  let db: TestStore;
  let proxy: CountingProxy;
  let destroy: () => void;
  let client: ReturnType<typeof createDynamoClient>;

  beforeEach(async () => {
    db = await startTestStore();
    proxy = await startCountingProxy(db.endpoint);
    client = createDynamoClient({ endpoint: proxy.endpoint, credentials: db.credentials });
    destroy = () => client.destroy();
  });
  afterEach(async () => {
    destroy();
    await proxy.close();
    await db.close();
  });

  it("poll: the host read, the claim on it and the booking's move, and no other item read", async () => {
    const dashboard = new ListedBookings();
    for (let i = 1; i <= DUE; i++) {
      const listed = dashboardBooking({ id: String(i), hostName: `h${i}`, installer: "Fuel" });
      dashboard.bookings.push(listed);
      await db.store.createHost(newHost(`h${i}`, null));
      await db.store.createBooking(newBooking(listed, new Date()));
    }
    const started: PhaseInput[] = [];
    const engine: WorkflowEngine = {
      start: async (_phase, _name, input) => {
        started.push(input);
        return { started: true };
      },
      stop: async () => undefined,
      status: async () => null,
      sendTaskSuccess: async () => "gone" as const,
      sendTaskFailure: async () => "gone" as const,
      sendTaskHeartbeat: async () => "gone" as const,
      history: async () => null,
    };
    proxy.reset();
    const report = await poll({
      dashboard,
      store: new DynamoDbStore(client, db.tables),
      engine,
      logger: silentLogger,
      now: () => new Date(),
      config: POLL_LAB,
      mailer: null,
    });
    expect(report.started).toHaveLength(DUE);
    expect(started).toHaveLength(DUE);
    const counts = proxy.counts();
    // Scan: the store's bookings, once. GetItem: each host once. PutItem: the claim and the move.
    expect(counts.byOperation).toEqual({ Scan: 1, GetItem: DUE, PutItem: 2 * DUE });
    expect(counts.failedWrites).toBe(0);
    for (let i = 1; i <= DUE; i++) {
      expect(await db.store.getHost(`h${i}`)).toMatchObject({
        state: "claimed",
        bookingId: `${i}`,
      });
    }
  });

  it("local engine: the record created, then one write per state entered, on the version held", async () => {
    const journal = await DynamoDbExecutionJournal.open(client, `executions-${Date.now()}`);
    let token: string | undefined;
    const handlers: Record<string, StepHandler> = new Proxy(
      {},
      {
        get: (_target, fn) =>
          (async (event: Record<string, unknown>) => {
            if (fn === "awaitEvent") token = String(event.taskToken);
            return {};
          }) as StepHandler,
      },
    );
    const engine = new LocalEngine({ handlers, journal, logger: silentLogger });
    proxy.reset();
    const input: PhaseInput = { bookingId: "1", hostName: "h1", phase: "provision", generation: 1 };
    await engine.start("provision", "booking-1-provision-1", input);
    // Up to the first callback wait (imaging): every state before it entered and recorded.
    await waitFor("the imaging wait", () => token);
    const record = await journal.get("booking-1-provision-1");
    expect(record?.position?.state).toBe("AwaitImaging");
    const counts = proxy.counts();
    // The create, then one compare-and-set per state entered; the get above is this test's.
    expect(counts.byOperation.PutItem).toBe(1 + (record?.version ?? Number.NaN));
    expect(counts.byOperation.GetItem).toBe(1);
    expect(counts.failedWrites).toBe(0);
    await engine.stop("booking-1-provision-1", "test over");
  });
});
