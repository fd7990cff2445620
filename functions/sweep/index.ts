/**
 * The scheduled sweep (see serverless.yml for its rate): VPN entries of bookings that are over,
 * and bookings past their retention, which DynamoDB TTL deletes too (Step Functions keeps its own
 * executions: no journal to sweep here).
 */
import { sweep } from "../../lib/lifecycle/sweep";
import { scheduledHandler } from "../cloud-runtime";

export const handler = scheduledHandler((rt) => sweep(rt));
