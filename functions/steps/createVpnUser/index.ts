/** The createVpnUser step: create the booking user's VPN account in the lab's LDAP directory. */
import { createVpnUser } from "../../../lib/lifecycle/access";
import { stepHandler } from "../../cloud-runtime";

export const handler = stepHandler(createVpnUser);
