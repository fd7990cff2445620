/** The revokeAccess step: remove the booking's VPN account at release. */
import { revokeAccess } from "../../../lib/lifecycle/access";
import { stepHandler } from "../../cloud-runtime";

export const handler = stepHandler(revokeAccess);
