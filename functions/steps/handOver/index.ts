/** The handOver step: send the booking user everything needed to use the pod. */
import { handOver } from "../../../lib/lifecycle/access";
import { stepHandler } from "../../cloud-runtime";

export const handler = stepHandler(handOver);
