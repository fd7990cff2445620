/**
 * The workflows' status steps (NoteStarted, NoteReady, NoteFailed, NoteReleased,
 * NoteReleaseFailed) for both APIs: a job's booking has its job's tasks answered from what its
 * bookings did now (statuses.ts), any other booking gets its status note (status-notes.ts).
 */
import { jobKey } from "../../domain/job";
import type { Runtime } from "../../ports/runtime";
import { postStatus, type StatusNoteInput } from "../status-notes";
import { answerJob } from "./statuses";

type NoteStageResult =
  | { posted: true; tasks?: number }
  | { posted: false; skipped: string; errors?: string[] };

export async function noteStage(rt: Runtime, input: StatusNoteInput): Promise<NoteStageResult> {
  const jobs = rt.jobs;
  const booking = jobs ? await rt.store.getBooking(input.bookingId) : null;
  if (!jobs || !booking?.job) return postStatus(rt, input);
  const record = await rt.store.getJob(jobKey(jobs.lab, booking.job.jobId));
  if (!record) return { posted: false, skipped: `job ${booking.job.jobId} is not in the store` };
  const report = await answerJob({ ...rt, jobs }, record);
  // A post that did not go through is posted again by the next poll: the run goes on.
  if (report.errors.length > 0) {
    return { posted: false, skipped: "a task's status could not be posted", errors: report.errors };
  }
  return { posted: true, tasks: report.posted.length };
}
