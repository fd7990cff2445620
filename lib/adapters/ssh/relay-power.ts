/**
 * Power control through the relay: log in to the host over a connection the relay forwards and
 * run `reboot`. The host goes down under the command, so a connection lost (or silent) after
 * `reboot` was sent, the command ended by the shutdown's signals, or still running at its
 * deadline, is the reboot under way — not a failure. Only what shows that nothing was sent (a
 * login refused or unreachable, a command that could not be started) or that `reboot` itself
 * answered failure is thrown: PowerControl.reboot's callers send a reboot again after an error.
 */
import { CommandFailedError, OutcomeUnknownError } from "../../errors";
import type { Logger } from "../../log";
import type { PowerControl, PowerTarget } from "../../ports/power";
import type { Relay } from "../../ports/relay";
import { CommandTimeoutError } from "./run-command";

export class RelayPowerControl implements PowerControl {
  readonly #relay: Relay;
  readonly #logger: Logger;

  constructor(relay: Relay, logger: Logger) {
    this.#relay = relay;
    this.#logger = logger;
  }

  async reboot(target: PowerTarget): Promise<{ hostKey: string }> {
    const { power } = target;
    return this.#relay.session(async (session) => {
      // Errors here (refused, unreachable, wrong key) happen before anything was sent.
      const host = await session.host({
        hostName: target.hostName,
        address: target.address,
        port: power.port,
        user: power.user,
        key: power.key,
        expectedHostKey: power.hostKey ?? target.knownHostKey,
        identity: target.identity,
      });
      try {
        await host.run({ argv: ["reboot"], timeoutSeconds: power.timeoutSeconds });
      } catch (error) {
        // A reboot sent twice restarts the host's network boot: only an error that shows the
        // command never ran goes back to the caller, who may send it again.
        const underWay =
          error instanceof OutcomeUnknownError ||
          error instanceof CommandTimeoutError ||
          isShutdownSignal(error);
        if (!underWay) throw error;
        this.#logger.debug({ host: target.hostName }, "connection went down with the host");
      }
      this.#logger.info({ host: target.hostName, hostKey: host.hostKey }, "reboot sent");
      return { hostKey: host.hostKey };
    });
  }
}

function isShutdownSignal(error: unknown): boolean {
  return error instanceof CommandFailedError && /signal (TERM|KILL|HUP)\b/.test(error.message);
}
