/**
 * A TCP proxy on loopback between a client under test and a real server (sshd, slapd, an SMTP
 * server, a simulator), with network faults on demand:
 *
 * - `cutAll()`: every open connection is cut now, by a reset (RST, what a crashed middlebox or
 *   a rebooted peer looks like) or a close (FIN both ways);
 * - `refuse()` / `accept()` / `refuseFor(ms)`: the listening socket is closed, so new
 *   connections are refused (ECONNREFUSED), and opened again on the same port;
 * - `setDelay(ms)`: every chunk is forwarded that much later, in order, both ways;
 * - `hold()` / `release()`: nothing is forwarded any more (a silent network: the peers see no
 *   reset, only silence, until their timeouts), and what was held is forwarded on release;
 * - `intercept(fn)` / `cutWhen(...)`: a test looks at each chunk as it passes and may cut the
 *   connection before the chunk is delivered (the server did the work, its answer is lost) or
 *   right after it;
 * - `setTarget(...)`: new connections go to another server (another machine at the address).
 *
 * Faults act on the connection's bytes only: what the server did with what reached it stays
 * done. A server that cannot be reached by the proxy is passed on to the client as a reset.
 */
import { createServer, type Server, Socket } from "node:net";

export type Direction = "toServer" | "toClient";

/**
 * What happens to a chunk a test looked at: forwarded, or the connection cut before it is
 * delivered (the chunk is lost) or right after it.
 */
export type Verdict = "forward" | "cut-before" | "cut-after";

export type CutHow = "reset" | "close";

export interface ProxiedConnection {
  /** 1, 2, … in the order the proxy accepted them. */
  readonly id: number;
  /** Bytes forwarded so far, per direction. */
  readonly bytes: Readonly<Record<Direction, number>>;
  readonly closed: boolean;
  /** Cuts this connection now (queued chunks are dropped). */
  cut(how?: CutHow): void;
}

export interface ChunkEvent {
  direction: Direction;
  chunk: Buffer;
  connection: ProxiedConnection;
}

export type Interceptor = (event: ChunkEvent) => Verdict;

export interface FaultProxyOptions {
  /** Where the real server listens. */
  target: { host: string; port: number };
  /** Loopback address to listen on (default 127.0.0.1). */
  host?: string;
  /** Port to listen on (default: a free one). */
  port?: number;
}

export interface FaultProxy {
  readonly host: string;
  readonly port: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Connections open now. */
  readonly open: number;
  /** Connections cut by a fault (cutAll, cut, an interceptor) so far. */
  readonly cuts: number;
  /** Whether new connections are refused right now. */
  readonly refusing: boolean;
  /** The connections accepted so far, open or not. */
  readonly connections: readonly ProxiedConnection[];
  /** Cuts every open connection now; answers how many were cut. */
  cutAll(how?: CutHow): number;
  /** Closes the listening socket: new connections are refused until accept(). */
  refuse(): Promise<void>;
  /** Listens again, on the same port. */
  accept(): Promise<void>;
  /** Refuses new connections for `ms`, then accepts again; resolves once it accepts again. */
  refuseFor(ms: number): Promise<void>;
  /** Forwards every chunk `ms` later from now on (0: at once); order is kept. */
  setDelay(ms: number): void;
  /** Forwards nothing from now on, in either direction, on every connection (new ones too). */
  hold(): void;
  /** Forwards what was held, and everything after it. */
  release(): void;
  /** Connects new connections to another server from now on (a different machine answers). */
  setTarget(target: { host: string; port: number }): void;
  /** Looks at every chunk from now on (null: stop looking). */
  intercept(interceptor: Interceptor | null): void;
  /**
   * Cuts the first connection whose chunk in `direction` matches `match`, before that chunk is
   * delivered (`when: "before"`, the default: the chunk is lost) or right after it; resolves
   * with the chunk once the cut happened. One-shot: the interceptor is removed afterwards.
   */
  cutWhen(
    direction: Direction,
    match: (chunk: Buffer, connection: ProxiedConnection) => boolean,
    when?: "before" | "after",
  ): Promise<Buffer>;
  close(): Promise<void>;
}

interface Link extends ProxiedConnection {
  closed: boolean;
  bytes: Record<Direction, number>;
  client: Socket;
  server: Socket;
  /** Each direction's chain of pending writes, so delays and holds keep the order. */
  queues: Record<Direction, Promise<void>>;
}

export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const host = options.host ?? "127.0.0.1";
  const links: Link[] = [];
  let accepted = 0;
  let cuts = 0;
  let delayMs = 0;
  let interceptor: Interceptor | null = null;
  let held: { promise: Promise<void>; release: () => void } | null = null;
  let listener: Server | null = null;
  let target = options.target;

  const cut = (link: Link, how: CutHow): void => {
    if (link.closed) return;
    link.closed = true;
    cuts += 1;
    for (const socket of [link.client, link.server]) {
      if (how === "reset" && !socket.destroyed && typeof socket.resetAndDestroy === "function") {
        // A socket still connecting cannot be reset; destroying it is the nearest thing.
        if (socket.connecting) socket.destroy();
        else socket.resetAndDestroy();
      } else if (how === "close") {
        socket.end();
        setTimeout(() => socket.destroy(), 200).unref();
      } else socket.destroy();
    }
  };

  const forward = (link: Link, direction: Direction, chunk: Buffer): void => {
    const verdict = interceptor ? interceptor({ direction, chunk, connection: link }) : "forward";
    const to = direction === "toServer" ? link.server : link.client;
    const delay = delayMs;
    const gate = held?.promise;
    link.queues[direction] = link.queues[direction].then(async () => {
      if (gate) await gate;
      if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
      if (link.closed) return;
      if (verdict === "cut-before") {
        cut(link, "reset");
        return;
      }
      link.bytes[direction] += chunk.length;
      to.write(chunk);
      if (verdict === "cut-after") {
        // Let the write reach the kernel before the reset tears the connection down.
        await new Promise((resolve) => setTimeout(resolve, 20));
        cut(link, "reset");
      }
    });
  };

  const onConnection = (client: Socket): void => {
    accepted += 1;
    const server = new Socket();
    const link: Link = {
      id: accepted,
      bytes: { toServer: 0, toClient: 0 },
      closed: false,
      client,
      server,
      queues: { toServer: Promise.resolve(), toClient: Promise.resolve() },
      cut: (how: CutHow = "reset") => cut(link, how),
    };
    links.push(link);
    client.setNoDelay(true);
    server.setNoDelay(true);
    const ended = (): void => {
      if (link.closed) return;
      link.closed = true;
      client.destroy();
      server.destroy();
    };
    // A half-close is passed on once everything before it was forwarded.
    const halfClose = (direction: Direction, to: Socket) => () => {
      link.queues[direction] = link.queues[direction].then(() => {
        if (!link.closed) to.end();
      });
    };
    client.on("data", (chunk: Buffer) => forward(link, "toServer", chunk));
    server.on("data", (chunk: Buffer) => forward(link, "toClient", chunk));
    client.on("end", halfClose("toServer", server));
    server.on("end", halfClose("toClient", client));
    client.on("error", ended);
    server.on("error", () => {
      // The server cannot be reached (down) or reset us: the client sees a reset.
      if (link.closed) return;
      link.closed = true;
      if (!client.destroyed) client.resetAndDestroy();
      server.destroy();
    });
    client.on("close", ended);
    server.on("close", () => {
      // Whatever the server sent before closing is delivered first.
      void link.queues.toClient.then(ended);
    });
    server.connect(target.port, target.host);
  };

  const listen = (port: number): Promise<Server> =>
    new Promise((resolve, reject) => {
      const server = createServer({ allowHalfOpen: true }, onConnection);
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        resolve(server);
      });
    });

  listener = await listen(options.port ?? 0);
  const bound = listener.address();
  const port = typeof bound === "object" && bound !== null ? bound.port : 0;

  const closeListener = async (): Promise<void> => {
    const current = listener;
    listener = null;
    // close() unbinds the port at once; its callback waits for the open connections, which
    // stay (only new ones are refused), so it is not waited for.
    current?.close();
  };

  const proxy: FaultProxy = {
    host,
    port,
    get accepted() {
      return accepted;
    },
    get open() {
      return links.filter((link) => !link.closed).length;
    },
    get cuts() {
      return cuts;
    },
    get refusing() {
      return listener === null;
    },
    get connections() {
      return [...links];
    },
    cutAll(how: CutHow = "reset") {
      const open = links.filter((link) => !link.closed);
      for (const link of open) cut(link, how);
      return open.length;
    },
    refuse: closeListener,
    async accept() {
      if (listener) return;
      // The port was ours a moment ago; another process taking it meanwhile is unlikely.
      for (let attempt = 1; ; attempt++) {
        try {
          listener = await listen(port);
          return;
        } catch (error) {
          if (attempt >= 20) throw error;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }
    },
    async refuseFor(ms: number) {
      await closeListener();
      await new Promise((resolve) => setTimeout(resolve, ms));
      await proxy.accept();
    },
    setDelay(ms: number) {
      delayMs = Math.max(0, ms);
    },
    hold() {
      if (held) return;
      let release: () => void = () => undefined;
      const promise = new Promise<void>((resolve) => {
        release = resolve;
      });
      held = { promise, release };
    },
    release() {
      held?.release();
      held = null;
    },
    setTarget(next) {
      target = next;
    },
    intercept(next: Interceptor | null) {
      interceptor = next;
    },
    cutWhen(direction, match, when = "before") {
      return new Promise<Buffer>((resolve) => {
        interceptor = (event) => {
          if (event.direction !== direction || !match(event.chunk, event.connection)) {
            return "forward";
          }
          interceptor = null;
          // Resolved once the cut is done, after what was queued before the chunk.
          const done = setInterval(() => {
            if (!event.connection.closed) return;
            clearInterval(done);
            resolve(event.chunk);
          }, 10);
          return when === "before" ? "cut-before" : "cut-after";
        };
      });
    },
    async close() {
      proxy.release();
      await closeListener();
      for (const link of links) {
        if (!link.closed) {
          link.closed = true;
          link.client.destroy();
          link.server.destroy();
        }
      }
    },
  };
  return proxy;
}
