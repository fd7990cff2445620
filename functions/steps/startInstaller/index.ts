/** The startInstaller step: copy the installer's scripts and start its deployment, detached. */
import { startInstaller } from "../../../lib/lifecycle/installer";
import { stepHandler } from "../../cloud-runtime";

export const handler = stepHandler(startInstaller);
