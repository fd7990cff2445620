/** The lab's watcher, scheduled (see serverless.yml for its rate and lib/lifecycle/watch.ts). */
import { runtime } from "../lib/app/runtime";
import { watch } from "../lib/lifecycle/watch";
import {
  embeddedWorkflowRunner,
  finishInvocation,
  installCloudRuntime,
  rememberInvocation,
} from "./cloud-runtime";

installCloudRuntime();

export const handler = async (_event: unknown, context?: { invokedFunctionArn?: string }) => {
  rememberInvocation(context);
  try {
    const rt = await runtime();
    const runner = embeddedWorkflowRunner();
    if (runner) {
      // The embedded default's tokens live in the process that runs its workflows.
      throw new Error(
        runner.runsHere
          ? "the embedded default's watcher runs inside `laas listen`; there is nothing to watch here"
          : `the listener (pid ${runner.pid}) runs this lab's watcher`,
      );
    }
    return await watch(rt);
  } finally {
    await finishInvocation();
  }
};
