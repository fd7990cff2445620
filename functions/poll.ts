/** The scheduled poll (see serverless.yml for its rate). */
import { runtime } from "../lib/app/runtime";
import { poll } from "../lib/lifecycle/poll";
import { installCloudRuntime } from "./cloud-runtime";

installCloudRuntime();

export const handler = async () => poll(await runtime());
