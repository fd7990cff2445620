/** The removePod step: remove the virtual pod before the host is reimaged. */
import { removePod } from "../../../lib/lifecycle/pod";
import { stepHandler } from "../../cloud-runtime";

export const handler = stepHandler(removePod);
