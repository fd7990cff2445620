/**
 * Power control chosen per host by its `power.type`: SSH `reboot` (the default) or IPMI through
 * the relay's ipmitool.
 */
import { ConfigError } from "../errors";
import type { PowerControl, PowerTarget } from "../ports/power";

export class PowerByType implements PowerControl {
  readonly #ssh: PowerControl;
  readonly #ipmi: PowerControl | null;

  /** `ipmi` null: no relay to run ipmitool on, so a host whose power is ipmi is refused. */
  constructor(adapters: { ssh: PowerControl; ipmi: PowerControl | null }) {
    this.#ssh = adapters.ssh;
    this.#ipmi = adapters.ipmi;
  }

  reboot(target: PowerTarget): Promise<{ hostKey: string | null }> {
    if (target.power.type === "ssh") return this.#ssh.reboot(target);
    if (!this.#ipmi) {
      return Promise.reject(
        new ConfigError(
          `power of ${target.hostName} is ipmi, which runs ipmitool on the relay: configure relay`,
        ),
      );
    }
    return this.#ipmi.reboot(target);
  }
}
