/**
 * Fuel: the Fuel master VM installs itself from the Fuel ISO; deploy.sh waits for it, starts the
 * other VMs so that they network-boot from it, and has it deploy the scenario onto them.
 */
import { ConfigError } from "../errors";
import { deployScriptSteps, type InstallerPlugin, isoBootedOrFirst, scenarioArgs } from "./types";

export const fuelInstaller: InstallerPlugin = {
  name: "fuel",
  aliases: ["fuel"],
  masterDomain: isoBootedOrFirst,
  steps(context) {
    const master = isoBootedOrFirst(context.domains);
    if (master === null) {
      throw new ConfigError("fuel: the domain file has no domain to run the Fuel master in");
    }
    const nodes = context.domains.domains
      .map((domain) => domain.name)
      .filter((name) => name !== master)
      .flatMap((name) => ["--node", name]);
    return deployScriptSteps("fuel", context, [
      ...scenarioArgs(context.scenario),
      "--pod",
      context.hostName,
      "--master-domain",
      master,
      ...nodes,
    ]);
  },
};
