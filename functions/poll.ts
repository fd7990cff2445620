/** The scheduled poll (see serverless.yml for its rate). */
import { runtime } from "../lib/app/runtime";
import { poll } from "../lib/lifecycle/poll";
import { finishInvocation, installCloudRuntime, rememberInvocation } from "./cloud-runtime";

installCloudRuntime();

export const handler = async (_event: unknown, context?: { invokedFunctionArn?: string }) => {
  rememberInvocation(context);
  try {
    return await poll(await runtime());
  } finally {
    await finishInvocation();
  }
};
