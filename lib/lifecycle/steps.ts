/**
 * Every workflow step by the name its Task calls (the function names of serverless.yml): what the
 * Lambda handlers in functions/steps/ wrap, and what the local engine runs in-process. Each takes
 * the runtime and the event its Task passes.
 */
import type { Runtime } from "../ports/runtime";
import {
  createVpnUser,
  handOver,
  recordUndelivered,
  revokeAccess,
  setHostAccess,
  undoAccess,
} from "./access";
import { startImaging } from "./imaging";
import { startInstaller } from "./installer";
import { noteStage } from "./jobs/note-stage";
import { markReady, markReleased, recordFailure } from "./outcomes";
import { buildPod, removePod } from "./pod";
import { awaitEvent } from "./waits";

export const workflowSteps = {
  startImaging,
  awaitEvent,
  buildPod,
  removePod,
  startInstaller,
  createVpnUser,
  setHostAccess,
  handOver,
  recordUndelivered,
  revokeAccess,
  undoAccess,
  postStatus: noteStage,
  markReady,
  markReleased,
  recordFailure,
} satisfies Record<string, (rt: Runtime, event: never) => Promise<unknown>>;

export type WorkflowStepName = keyof typeof workflowSteps;
