import type { Booking } from "../domain/booking";
import type { Host } from "../domain/host";
import type { JobRecord } from "../domain/job";
import type { VpnPerson } from "../domain/vpn-person";

/**
 * Result of a compare-and-set update: `changed` is false when the change function declined
 * (returned null) — the item is then returned as it is in the store.
 */
export interface Updated<T> {
  changed: boolean;
  item: T;
}

export interface UpdateOptions<T> {
  /**
   * The item as the caller last read it (from a list, or an earlier update's result): the first
   * attempt decides on it and writes on its version without reading the store first. A copy that
   * is no longer the latest loses that write and the update goes on as without it (read, decide
   * again); so does a change that declines on the copy.
   */
  expected?: T;
}

/**
 * Hosts, bookings, the people holding a VPN account and the jobs of the later dashboard's jobs
 * API. Every write is conditional: creates only create, and updates are compare-and-set on the
 * item's `version`, re-read and re-applied when another writer got there first. So two pollers
 * racing, or a step retried after a timeout, can never lose an update or apply a transition
 * twice: the change function sees the latest item and decides again.
 */
export interface Store {
  getHost(name: string): Promise<Host | null>;
  listHosts(): Promise<Host[]>;
  /** Creates the host; false if one by that name exists already. */
  createHost(host: Host): Promise<boolean>;
  deleteHost(name: string): Promise<void>;
  /** Throws NotFoundError when there is no such host. */
  updateHost(
    name: string,
    change: (current: Host) => Host | null,
    options?: UpdateOptions<Host>,
  ): Promise<Updated<Host>>;

  getBooking(id: string): Promise<Booking | null>;
  listBookings(): Promise<Booking[]>;
  /** Creates the booking; false if one with that id exists already. */
  createBooking(booking: Booking): Promise<boolean>;
  /** With `ifVersion`, only while it is at that version: ConflictError if it changed or is gone. */
  deleteBooking(id: string, ifVersion?: number): Promise<void>;
  /** Throws NotFoundError when there is no such booking. */
  updateBooking(
    id: string,
    change: (current: Booking) => Booking | null,
    options?: UpdateOptions<Booking>,
  ): Promise<Updated<Booking>>;

  getVpnPerson(key: string): Promise<VpnPerson | null>;
  listVpnPersons(): Promise<VpnPerson[]>;
  /** Creates the record; false if one with that key exists already. */
  createVpnPerson(person: VpnPerson): Promise<boolean>;
  /** Throws NotFoundError when there is no such record. */
  updateVpnPerson(
    key: string,
    change: (current: VpnPerson) => VpnPerson | null,
  ): Promise<Updated<VpnPerson>>;

  getJob(key: string): Promise<JobRecord | null>;
  listJobs(): Promise<JobRecord[]>;
  /** Creates the record; false if one with that key exists already. */
  createJob(record: JobRecord): Promise<boolean>;
  /** Throws NotFoundError when there is no such record. */
  updateJob(
    key: string,
    change: (current: JobRecord) => JobRecord | null,
    options?: UpdateOptions<JobRecord>,
  ): Promise<Updated<JobRecord>>;
  /** With `ifVersion`, only while it is at that version: ConflictError if it changed or is gone. */
  deleteJob(key: string, ifVersion?: number): Promise<void>;
}
