/**
 * JOID: deploy.sh runs JOID's own deploy script on the host (MAAS and Juju), with the scenario
 * split into the SDN controller, features and HA mode JOID asks for.
 */
import { deployScriptSteps, type InstallerPlugin, isoBootedOrFirst, scenarioArgs } from "./types";

export const joidInstaller: InstallerPlugin = {
  name: "joid",
  aliases: ["joid"],
  masterDomain: isoBootedOrFirst,
  steps(context) {
    return deployScriptSteps("joid", context, [
      ...scenarioArgs(context.scenario),
      "--pod",
      context.hostName,
    ]);
  },
};
