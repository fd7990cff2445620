/** The recordUndelivered step: a hand-over that gave up is recorded, the operators told. */
import { recordUndelivered } from "../../../lib/lifecycle/access";
import { stepHandler } from "../../cloud-runtime";

export const handler = stepHandler(recordUndelivered);
