/** The undoAccess step: remove the VPN account of a provision that failed. */
import { undoAccess } from "../../../lib/lifecycle/access";
import { stepHandler } from "../../cloud-runtime";

export const handler = stepHandler(undoAccess);
