/**
 * A simulated lab with the hand-over's real services — an OpenLDAP slapd for VPN users and an
 * SMTP server for the messages — in a throwaway work folder, and (listenOnHandoverLab) the
 * embedded default listening on it. One close() takes everything down again.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  handoverWith,
  type SimulatedLab,
  type SimulatedLabOptions,
  startSimulatedLab,
} from "../../sim/lab";
import { type RunningSlapd, startSlapd } from "../../sim/slapd";
import { startSmtpServer, type TestSmtpServer } from "../../sim/smtp";
import { type LabListener, type LabListenerOptions, listenOnLab } from "./lab-listener";

export interface HandoverLab {
  lab: SimulatedLab;
  slapd: RunningSlapd;
  smtp: TestSmtpServer;
  /** The work folder: the lab's config, store (`db`) and logs. */
  workDir: string;
  close(): Promise<void>;
}

export interface HandoverLabOptions {
  /** Name of the work folder under the system's temp folder (a random suffix is added). */
  name: string;
  /** The simulated lab's settings (default: time scale 400, FOG looked at every second). */
  lab?: Omit<SimulatedLabOptions, "workDir" | "handover">;
  /** Directory users never removed, and who is told of hand-overs and failures. */
  handover?: { permanentUsers?: string[]; operators?: string[] };
}

export async function startHandoverLab(options: HandoverLabOptions): Promise<HandoverLab> {
  const workDir = await mkdtemp(join(tmpdir(), `${options.name}-`));
  const slapd = await startSlapd();
  const smtp = await startSmtpServer({ security: "starttls" });
  const lab = await startSimulatedLab({
    timeScale: 400,
    pollInterval: 1,
    ...options.lab,
    workDir,
    handover: handoverWith(slapd, smtp, options.handover),
  });
  return {
    lab,
    slapd,
    smtp,
    workDir,
    close: async () => {
      await Promise.allSettled([lab.close(), smtp.close(), slapd.stop()]);
      await rm(workDir, { recursive: true, force: true });
    },
  };
}

export type ListeningHandoverLab = HandoverLab & Omit<LabListener, "close">;

/** startHandoverLab, then the embedded default listening on it (closed first by close()). */
export async function listenOnHandoverLab(
  options: HandoverLabOptions & { listen?: LabListenerOptions },
): Promise<ListeningHandoverLab> {
  const services = await startHandoverLab(options);
  const listening = await listenOnLab(services.lab, options.listen);
  return {
    ...services,
    ...listening,
    close: async () => {
      await listening.close();
      await services.close();
    },
  };
}
