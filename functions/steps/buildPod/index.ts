/** The buildPod step: build the virtual pod (libvirt networks, disks, VMs) on the host. */
import { buildPod } from "../../../lib/lifecycle/pod";
import { stepHandler } from "../../cloud-runtime";

export const handler = stepHandler(buildPod);
