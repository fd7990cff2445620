/** The setHostAccess step: set a fresh root password and install the user's SSH key on the host. */
import { setHostAccess } from "../../../lib/lifecycle/access";
import { stepHandler } from "../../cloud-runtime";

export const handler = stepHandler(setHostAccess);
