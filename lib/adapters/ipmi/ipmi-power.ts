/**
 * Power control by IPMI, run on the relay so that the BMCs' network needs no route from the
 * cloud: `ipmitool -I lanplus` sets the next boot to PXE, reads the power, cycles it (on) or
 * turns it on (off), then reads it again until it is on — all by the BMC's deadline
 * (`power.ipmi.timeout`). A BMC that does not answer is asked again until then; a login it
 * refuses is an AuthError at once. The password goes to ipmitool on its standard input.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { IpmiConfig } from "../../config/types";
import {
  AuthError,
  CommandFailedError,
  ConfigError,
  OutcomeUnknownError,
  ProtocolError,
  TransientError,
} from "../../errors";
import type { Logger } from "../../log";
import type { PowerControl, PowerTarget } from "../../ports/power";
import type { CommandResult, Relay, RelaySession } from "../../ports/relay";
import { CommandTimeoutError } from "../ssh/run-command";
import {
  acknowledged,
  BOOTDEV_PXE,
  BOOTDEV_PXE_EFI,
  classifyFailure,
  ipmitoolArgv,
  POWER_CYCLE,
  POWER_ON,
  POWER_STATUS,
  parsePowerStatus,
  passwordInput,
} from "./ipmitool";

/**
 * The BMC gave no session by the deadline (nothing answered, or the name did not resolve).
 * Keeps TransientError's name, which the workflows' Retry matches.
 */
export class BmcUnansweredError extends TransientError {
  readonly reason: string;

  constructor(message: string, reason: string, options?: ErrorOptions) {
    super(message, options);
    this.reason = reason;
  }
}

/** Between two tries of a BMC that did not answer, and two reads of a power not yet on. */
const RETRY_INTERVAL_MS = 1_000;
/** ipmitool's exit code for a failed command: its stderr says why. */
const IPMITOOL_FAILED = 1;

interface Attempt {
  session: RelaySession;
  target: PowerTarget;
  ipmi: IpmiConfig;
  /** Epoch ms by which the power must read on. */
  deadline: number;
  log: Logger;
}

export class IpmiPowerControl implements PowerControl {
  readonly #relay: Relay;
  readonly #logger: Logger;

  constructor(relay: Relay, logger: Logger) {
    this.#relay = relay;
    this.#logger = logger;
  }

  async reboot(target: PowerTarget): Promise<{ hostKey: string | null }> {
    const { ipmi } = target.power;
    if (!ipmi) {
      throw new ConfigError(`power of ${target.hostName} is ipmi but it has no BMC settings`);
    }
    const bmc = `${ipmi.address}:${ipmi.port}`;
    const log = this.#logger.child({ host: target.hostName, bmc, user: ipmi.user });
    const deadline = Date.now() + ipmi.timeoutSeconds * 1000;
    await this.#relay.session(async (session) => {
      const attempt: Attempt = { session, target, ipmi, deadline, log };
      await command(attempt, ipmi.efiBoot ? BOOTDEV_PXE_EFI : BOOTDEV_PXE, true);
      const before = await powerState(attempt);
      log.debug({ power: before }, "ipmi: next boot set to PXE");
      try {
        // Turning on a host that is on does nothing; cycling one that is off neither, on some BMCs.
        await command(attempt, before === "on" ? POWER_CYCLE : POWER_ON, before === "off");
      } catch (error) {
        // The answer was lost, not the command: whether it ran shows in the power read next.
        if (!(error instanceof OutcomeUnknownError)) throw error;
        log.warn({ err: error }, "ipmi: the answer to the power command was lost");
      }
      await confirmOn(attempt);
      log.info({ was: before }, before === "on" ? "ipmi: power cycled" : "ipmi: powered on");
    });
    return { hostKey: null };
  }
}

/**
 * Reads the power again and again until it is on. By the deadline: a TransientError when the BMC
 * answered "off" (a retry turns it on), the BmcUnansweredError when it answered nothing.
 */
async function confirmOn(attempt: Attempt): Promise<void> {
  let last: "on" | "off" | "not read" = "not read";
  let reads = 0;
  for (;;) {
    await sleep(Math.min(RETRY_INTERVAL_MS, Math.max(0, attempt.deadline - Date.now())));
    try {
      last = await powerState(attempt);
      reads += 1;
    } catch (error) {
      // command() has tried until the deadline when it throws this one.
      if (!(error instanceof BmcUnansweredError) || Date.now() >= attempt.deadline) throw error;
    }
    if (last === "on") return;
    if (Date.now() >= attempt.deadline) break;
  }
  throw new TransientError(
    `power of ${attempt.target.hostName} (BMC ${bmcOf(attempt.ipmi)}) did not read on within ` +
      `${attempt.ipmi.timeoutSeconds}s of the command (last read: ${last}, ${reads} reads)`,
  );
}

async function powerState(attempt: Attempt): Promise<"on" | "off"> {
  const result = await command(attempt, POWER_STATUS, true);
  const state = parsePowerStatus(result.stdout);
  if (state === null) {
    throw new ProtocolError(
      `\`ipmitool chassis power status\` for ${attempt.target.hostName} (BMC ${bmcOf(attempt.ipmi)}) ` +
        `answered no power state: ${JSON.stringify(result.stdout.trim().slice(0, 200))}`,
    );
  }
  return state;
}

/**
 * Runs one ipmitool command on the relay; a BMC that did not answer (no session, so nothing was
 * sent) is tried again until the deadline. Answers the accepted result, or throws what the BMC
 * said: AuthError, ConfigError (cipher suite), CommandFailedError, BmcUnansweredError.
 */
async function command(
  attempt: Attempt,
  argv: readonly string[],
  idempotent: boolean,
): Promise<CommandResult> {
  const { target, ipmi } = attempt;
  const what = `\`ipmitool ${argv.join(" ")}\` for ${target.hostName} (BMC ${bmcOf(ipmi)})`;
  for (;;) {
    const remainingMs = attempt.deadline - Date.now();
    let result: CommandResult;
    try {
      result = await attempt.session.onRelay({
        argv: ipmitoolArgv(ipmi, argv),
        stdin: passwordInput(ipmi),
        timeoutSeconds: Math.max(1, Math.ceil(remainingMs / 1000)),
        okExitCodes: [0, IPMITOOL_FAILED],
        idempotent,
      });
    } catch (error) {
      if (!(error instanceof CommandTimeoutError)) throw error;
      throw unanswered(attempt, "ipmitool was still waiting at the deadline", error);
    }
    if (result.exitCode === 0) {
      if (argv !== POWER_STATUS && !acknowledged(argv, result.stdout)) {
        throw new ProtocolError(
          `${what} exited 0 without saying it was done: ${JSON.stringify(result.stdout.trim().slice(0, 200))}`,
        );
      }
      return result;
    }
    const failure = classifyFailure(result.stderr);
    switch (failure.kind) {
      case "auth":
        throw new AuthError(
          `the BMC of ${target.hostName} (${bmcOf(ipmi)}) refused the IPMI login as ${ipmi.user}: ` +
            `${failure.reason}; check power.ipmi.user and power.ipmi.password (${ipmi.password.source})`,
        );
      case "cipher":
        throw new ConfigError(
          `the BMC of ${target.hostName} (${bmcOf(ipmi)}) refused cipher suite ${ipmi.cipherSuite}: ` +
            `${failure.reason}; set power.ipmi.cipher_suite to one it offers ` +
            "(`ipmitool lan print` shows them: RMCP+ Cipher Suites)",
        );
      case "refused":
        throw new CommandFailedError(`${what} failed: ${failure.reason}`);
      case "unreachable":
        if (Date.now() + RETRY_INTERVAL_MS >= attempt.deadline) {
          throw unanswered(attempt, failure.reason);
        }
        attempt.log.debug(
          { reason: failure.reason },
          "ipmi: no session with the BMC, trying again",
        );
        await sleep(RETRY_INTERVAL_MS);
    }
  }
}

function unanswered(attempt: Attempt, reason: string, cause?: unknown): BmcUnansweredError {
  return new BmcUnansweredError(
    `the BMC of ${attempt.target.hostName} (${bmcOf(attempt.ipmi)}) did not answer within ` +
      `${attempt.ipmi.timeoutSeconds}s (${reason}); power.ipmi.address, port and the BMC's ` +
      "network as seen from the relay are worth a look",
    reason,
    cause === undefined ? undefined : { cause },
  );
}

function bmcOf(ipmi: IpmiConfig): string {
  return `${ipmi.address}:${ipmi.port}`;
}
