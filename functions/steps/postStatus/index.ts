/** The postStatus step: post a status note on the dashboard for the booking's resource. */
import { postStatus } from "../../../lib/lifecycle/status-notes";
import { stepHandler } from "../../cloud-runtime";

export const handler = stepHandler(postStatus);
