/** The scheduled directory sweep (see serverless.yml for its rate). */
import { runtime } from "../lib/app/runtime";
import { sweepVpnUsers } from "../lib/lifecycle/sweep";
import { finishInvocation, installCloudRuntime, rememberInvocation } from "./cloud-runtime";

installCloudRuntime();

export const handler = async (_event: unknown, context?: { invokedFunctionArn?: string }) => {
  rememberInvocation(context);
  try {
    return await sweepVpnUsers(await runtime());
  } finally {
    await finishInvocation();
  }
};
