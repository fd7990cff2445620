/** A host as the imaging server knows it. */
export interface ImagerHost {
  id: string;
  name: string;
  /** Primary MAC, lower case, or null when FOG has none. */
  mac: string | null;
  /** Address FOG last saw, or null. */
  ip: string | null;
  /** When FOG last finished a deploy to this host (its `deployed` field), or null if never. */
  deployed: string | null;
}

/** An imaging task still in the server's active list. */
export interface ImagingProgress {
  taskId: string;
  /** The host the task is for (FOG's host id). */
  hostId: string;
  /** The task's name, as given when it was created. */
  taskName: string;
  /** 1 Queued, 2 Checked In, 3 In-Progress (FOG's task states). */
  stateId: number;
  stateName: string;
  /** 0–100; may restart from 0 for each partition. */
  percent: number;
}

/** How a deploy task ends, beyond writing the image. */
export interface DeployOptions {
  /**
   * FOG powers the host off once the image is written (its task field `shutdown`, "Schedule
   * Shutdown after task completion") instead of rebooting it into the new system: a host released
   * at the end of a booking is left clean and powered off. Absent or false: the task is asked for
   * exactly as without options, and FOG reboots the host.
   */
  shutdown?: boolean;
}

/**
 * The imaging server (FOG). Every call can throw AuthError (credentials refused),
 * NotFoundError, TransientError (network, 5xx, a garbled answer; reads are retried within the
 * adapter first), ConfigError (the server URL leads elsewhere) or ProtocolError (an answer of a
 * shape it does not know). Host ids are in canonical form ("3", never "003"): compare as strings.
 */
export interface Imager {
  listHosts(): Promise<ImagerHost[]>;
  /** Finds the host by its name, without regard to case as FOG does (ConfigError if ambiguous). */
  findHost(name: string): Promise<ImagerHost>;
  /**
   * Sets the host's image and creates a deploy task. When the host is already in an active task,
   * cancels that task and creates the deploy again, once.
   *
   * Not idempotent by itself: each call asks for a new task (and cancels one under way). Callers
   * that may run twice record their intent first and look (progress) before calling again.
   * A task adopted (one under the same name whose creation's answer was lost) is taken as it is:
   * callers give the same options to every call under one task name.
   */
  deploy(hostId: string, imageId: number, taskName: string, options?: DeployOptions): Promise<void>;
  /**
   * Every task in the active list, one request however many hosts are imaging: what the lab's
   * watcher reads once per cycle. One task per host (the newest, should FOG list two).
   */
  activeTasks(): Promise<ImagingProgress[]>;
  /** The host's task while it is in the active list; null once it has left it. */
  progress(hostId: string): Promise<ImagingProgress | null>;
  /** Cancels the host's active task, if any. */
  cancel(hostId: string): Promise<void>;
}
