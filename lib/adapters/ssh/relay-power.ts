/**
 * Power control through the relay: log in to the host over a connection the relay forwards and
 * run `reboot`. The host goes down under the command, so a connection lost after `reboot` was
 * sent, or the command ended by the shutdown's signals, is the reboot under way — not a failure.
 */
import { CommandFailedError, TransientError } from "../../errors";
import type { Logger } from "../../log";
import type { PowerControl, PowerTarget } from "../../ports/power";
import type { Relay } from "../../ports/relay";

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
        if (!(error instanceof TransientError || isShutdownSignal(error))) throw error;
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
