/** The markReleased step: the release ended, the booking is released. */
import { markReleased } from "../../../lib/lifecycle/outcomes";
import { stepHandler } from "../../cloud-runtime";

export const handler = stepHandler(markReleased);
