/**
 * The workflow steps by function name in serverless.yml (what the ASL's Fn::GetAtt names). Each
 * step is a Lambda function of its own, built from functions/steps/<name>/index.ts so that its
 * bundle holds only what it calls; the local engine binds the Task states of the same state
 * machine files to these very handlers. test/statemachines.test.ts checks the names against the
 * ASL files and serverless.yml.
 */
import { handler as awaitEvent } from "./steps/awaitEvent";
import { handler as buildPod } from "./steps/buildPod";
import { handler as createVpnUser } from "./steps/createVpnUser";
import { handler as handOver } from "./steps/handOver";
import { handler as markReady } from "./steps/markReady";
import { handler as markReleased } from "./steps/markReleased";
import { handler as postStatus } from "./steps/postStatus";
import { handler as recordFailure } from "./steps/recordFailure";
import { handler as recordUndelivered } from "./steps/recordUndelivered";
import { handler as removePod } from "./steps/removePod";
import { handler as revokeAccess } from "./steps/revokeAccess";
import { handler as setHostAccess } from "./steps/setHostAccess";
import { handler as startImaging } from "./steps/startImaging";
import { handler as startInstaller } from "./steps/startInstaller";
import { handler as undoAccess } from "./steps/undoAccess";

/** Each takes the event its Task passes. */
export const stepHandlers = {
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
  postStatus,
  markReady,
  markReleased,
  recordFailure,
} satisfies Record<string, (event: never) => Promise<unknown>>;
