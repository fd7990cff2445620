/**
 * The listener as a real process, stopped with SIGTERM (a drain, as `laas stop` asks) in the
 * middle of each wait of a booking, then started again: the drain hands its workflows over
 * without loss, and the next listener finishes each booking — ready with its hand-over, then
 * released — with nothing done twice, counted at the simulators.
 */
import { afterAll, beforeAll, describe, it } from "vitest";
import {
  cleanImagingInProgress,
  expectOneOfEverything,
  handoverPending,
  imagingInProgress,
  installerRunning,
  type RestartLab,
  runScenario,
  startRestartLab,
  waitingForBoot,
} from "./helpers/restart-lab";

const SLOW = 120_000;
const WAITS = [
  imagingInProgress,
  waitingForBoot,
  installerRunning,
  handoverPending,
  cleanImagingInProgress,
];

describe("a listener drained (SIGTERM) in the middle of a wait and started again", () => {
  let r: RestartLab;
  beforeAll(async () => {
    r = await startRestartLab();
  }, SLOW);
  afterAll(async () => r?.close());

  it.each(WAITS.map((s, i) => [s.name, s, i] as const))(
    "%s: handed over and finished by the next listener, nothing done twice",
    async (_name, scenario, index) => {
      const host = r.lab.inventory[index % r.lab.inventory.length]!;
      expectOneOfEverything(await runScenario(r, scenario, "drain", 700 + index, host));
    },
    SLOW,
  );
});
