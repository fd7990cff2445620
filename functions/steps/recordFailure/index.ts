/** The recordFailure step: why the run failed, the host freed or quarantined, operators told. */
import { recordFailure } from "../../../lib/lifecycle/outcomes";
import { stepHandler } from "../../cloud-runtime";

export const handler = stepHandler(recordFailure);
