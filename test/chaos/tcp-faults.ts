/**
 * The chaos run's view of a TCP fault point (relay sshd, slapd, SMTP): cut every connection now,
 * refuse new ones for a while. Backed by the shared TCP fault proxy
 * (test/helpers/tcp-fault-proxy.ts); this file only adapts it — overlapping refusals make one
 * window that lasts until the later end — and counts what was done.
 */
import { type FaultProxy, startFaultProxy } from "../helpers/tcp-fault-proxy";

export interface TcpFaultPoint {
  readonly name: string;
  /** Where LaaS connects (127.0.0.1). */
  readonly port: number;
  /** Cuts every connection through the point now (a reset); answers how many. */
  cutAll(): number;
  /** New connections are refused for `ms` (those open stay). */
  refuseFor(ms: number): void;
  /** Connections cut so far, and refusal windows opened. */
  readonly counts: { cut: number; refusals: number };
  close(): Promise<void>;
}

export async function startTcpFaultPoint(
  name: string,
  target: { host: string; port: number },
): Promise<TcpFaultPoint> {
  const proxy: FaultProxy = await startFaultProxy({ target });
  const counts = { cut: 0, refusals: 0 };
  let refusingUntil = 0;
  let timer: NodeJS.Timeout | null = null;
  let closed = false;
  const reopen = (): void => {
    timer = null;
    if (closed) return;
    const left = refusingUntil - Date.now();
    if (left > 0) {
      timer = setTimeout(reopen, left);
      return;
    }
    void proxy.accept().catch(() => undefined);
  };
  return {
    name,
    port: proxy.port,
    counts,
    cutAll() {
      const cut = proxy.cutAll("reset");
      counts.cut += cut;
      return cut;
    },
    refuseFor(ms) {
      counts.refusals += 1;
      refusingUntil = Math.max(refusingUntil, Date.now() + ms);
      void proxy.refuse();
      timer ??= setTimeout(reopen, ms);
    },
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      await proxy.close();
    },
  };
}
