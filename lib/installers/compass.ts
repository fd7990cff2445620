/**
 * Compass: deploy.sh points compass4nfv's deploy script at the pod description of the scenario
 * and runs it on the host.
 */
import { deployScriptSteps, type InstallerPlugin, isoBootedOrFirst, scenarioArgs } from "./types";

export const compassInstaller: InstallerPlugin = {
  name: "compass",
  aliases: ["compass", "compass4nfv"],
  masterDomain: isoBootedOrFirst,
  steps(context) {
    return deployScriptSteps("compass", context, [
      ...scenarioArgs(context.scenario),
      "--pod",
      context.hostName,
    ]);
  },
};
