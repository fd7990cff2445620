/** The markReady step: the provision ended well, the booking is ready and its host served it. */
import { markReady } from "../../../lib/lifecycle/outcomes";
import { stepHandler } from "../../cloud-runtime";

export const handler = stepHandler(markReady);
