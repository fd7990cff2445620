/**
 * The listener as a real process, SIGKILLed at each point of a booking's provision and release,
 * then started again: every booking still ends ready (its hand-over delivered) and then released,
 * with one FOG deploy task per phase, one reboot per imaging, the installer launched once, one
 * VPN user and one hand-over e-mail — counted at the simulators and the real slapd and SMTP
 * server.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  cleanImagingInProgress,
  cleanImagingJustCompleted,
  expectOneOfEverything,
  handoverPending,
  imagingInProgress,
  imagingQueued,
  installerLaunched,
  installerRunning,
  podBuild,
  podRemoval,
  type RestartLab,
  runScenario,
  settingAccess,
  startRestartLab,
  waitingForBoot,
} from "./helpers/restart-lab";

const SLOW = 120_000;
const SCENARIOS = [
  imagingQueued,
  imagingInProgress,
  waitingForBoot,
  podBuild,
  installerLaunched,
  installerRunning,
  settingAccess,
  handoverPending,
  podRemoval,
  cleanImagingInProgress,
  cleanImagingJustCompleted,
];

describe("a listener killed (SIGKILL) and started again", () => {
  let r: RestartLab;
  beforeAll(async () => {
    r = await startRestartLab();
  }, SLOW);
  afterAll(async () => r?.close());

  it.each(SCENARIOS.map((s, i) => [s.name, s, i] as const))(
    "%s: the booking ends ready then released, nothing done twice",
    async (_name, scenario, index) => {
      const host = r.lab.inventory[index % r.lab.inventory.length]!;
      const counted = await runScenario(r, scenario, "kill", 600 + index, host);
      expectOneOfEverything(counted);
      expect(counted.interruptedAt).not.toBe("");
    },
    SLOW,
  );
});
