/**
 * The workflow steps, one Lambda function each (see serverless.yml). The local engine binds the
 * Task states of the same state machine files to these same exports.
 */

import { runtime } from "../lib/app/runtime";
import {
  createVpnUser,
  type HandOverFailedInput,
  handOver,
  recordUndelivered,
  revokeAccess,
  setHostAccess,
  type UndoAccessInput,
  undoAccess,
} from "../lib/lifecycle/access";
import { startImaging } from "../lib/lifecycle/imaging";
import { startInstaller } from "../lib/lifecycle/installer";
import {
  markReady,
  markReleased,
  type RecordFailureInput,
  recordFailure,
} from "../lib/lifecycle/outcomes";
import { buildPod, removePod } from "../lib/lifecycle/pod";
import { postStatus, type StatusNoteInput } from "../lib/lifecycle/status-notes";
import { type AwaitEventInput, awaitEvent } from "../lib/lifecycle/waits";
import type { PhaseInput } from "../lib/ports/engine";
import { installCloudRuntime } from "./cloud-runtime";

installCloudRuntime();

export const startImagingHandler = async (event: PhaseInput) =>
  startImaging(await runtime(), event);

export const awaitEventHandler = async (event: AwaitEventInput) =>
  awaitEvent(await runtime(), event);

export const buildPodHandler = async (event: PhaseInput) => buildPod(await runtime(), event);

export const removePodHandler = async (event: PhaseInput) => removePod(await runtime(), event);

export const startInstallerHandler = async (event: PhaseInput) =>
  startInstaller(await runtime(), event);

export const createVpnUserHandler = async (event: PhaseInput) =>
  createVpnUser(await runtime(), event);

export const setHostAccessHandler = async (event: PhaseInput) =>
  setHostAccess(await runtime(), event);

export const handOverHandler = async (event: PhaseInput) => handOver(await runtime(), event);

export const recordUndeliveredHandler = async (event: HandOverFailedInput) =>
  recordUndelivered(await runtime(), event);

export const revokeAccessHandler = async (event: PhaseInput) =>
  revokeAccess(await runtime(), event);

export const undoAccessHandler = async (event: UndoAccessInput) =>
  undoAccess(await runtime(), event);

export const postStatusHandler = async (event: StatusNoteInput) =>
  postStatus(await runtime(), event);

export const markReadyHandler = async (event: PhaseInput) => markReady(await runtime(), event);

export const markReleasedHandler = async (event: PhaseInput) =>
  markReleased(await runtime(), event);

export const recordFailureHandler = async (event: RecordFailureInput) =>
  recordFailure(await runtime(), event);

/**
 * Function name in serverless.yml (what the ASL's Fn::GetAtt names) → handler. Each takes the
 * event its Task passes; test/statemachines.test.ts checks the names against the ASL files.
 */
export const stepHandlers = {
  startImaging: startImagingHandler,
  awaitEvent: awaitEventHandler,
  buildPod: buildPodHandler,
  removePod: removePodHandler,
  startInstaller: startInstallerHandler,
  createVpnUser: createVpnUserHandler,
  setHostAccess: setHostAccessHandler,
  handOver: handOverHandler,
  recordUndelivered: recordUndeliveredHandler,
  revokeAccess: revokeAccessHandler,
  undoAccess: undoAccessHandler,
  postStatus: postStatusHandler,
  markReady: markReadyHandler,
  markReleased: markReleasedHandler,
  recordFailure: recordFailureHandler,
} satisfies Record<string, (event: never) => Promise<unknown>>;
