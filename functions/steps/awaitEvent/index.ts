/** The awaitEvent step: hand a wait's task token to the booking, for the watcher to complete. */
import { awaitEvent } from "../../../lib/lifecycle/waits";
import { stepHandler } from "../../cloud-runtime";

export const handler = stepHandler(awaitEvent);
