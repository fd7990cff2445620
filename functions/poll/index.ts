/** The scheduled poll (see serverless.yml for its rate). */
import { poll } from "../../lib/lifecycle/poll";
import { scheduledHandler } from "../cloud-runtime";

export const handler = scheduledHandler((rt) => poll(rt));
