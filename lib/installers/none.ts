/**
 * No installer: the booking gets the virtual pod only. Its VMs are defined and left off; none is
 * a master, and nothing runs after the pod is built.
 */
import type { InstallerPlugin } from "./types";

export const noInstaller: InstallerPlugin = {
  name: "none",
  aliases: ["none", "null", ""],
  masterDomain: () => null,
  steps: () => [],
};
