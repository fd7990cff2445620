/** The lab's watcher, scheduled (see serverless.yml for its rate and lib/lifecycle/watch.ts). */
import { watch } from "../../lib/lifecycle/watch";
import { embeddedWorkflowRunner, scheduledHandler } from "../cloud-runtime";

export const handler = scheduledHandler(async (rt) => {
  const runner = embeddedWorkflowRunner();
  if (runner) {
    // The embedded default's tokens live in the process that runs its workflows.
    throw new Error(
      runner.runsHere
        ? "the embedded default's watcher runs inside `laas listen`; there is nothing to watch here"
        : `the listener (pid ${runner.pid}) runs this lab's watcher`,
    );
  }
  return watch(rt);
});
