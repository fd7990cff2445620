/** The postStatus step: a status note on the dashboard, or the statuses of the booking's job. */
import { noteStage } from "../../../lib/lifecycle/jobs/note-stage";
import { stepHandler } from "../../cloud-runtime";

export const handler = stepHandler(noteStage);
