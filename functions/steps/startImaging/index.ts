/** The startImaging step: set the host's FOG image, create the deploy task, reboot the host. */
import { startImaging } from "../../../lib/lifecycle/imaging";
import { stepHandler } from "../../cloud-runtime";

export const handler = stepHandler(startImaging);
