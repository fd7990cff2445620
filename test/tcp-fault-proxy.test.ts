/**
 * The TCP fault proxy the fault tests and the chaos run share (helpers/tcp-fault-proxy.ts),
 * against plain echo servers: it forwards, and each fault does what it says and no more.
 */
import { connect, createServer, type Server, type Socket } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type FaultProxy, startFaultProxy } from "./helpers/tcp-fault-proxy";

/** An echo server that prefixes what it sends back, so two can be told apart. */
async function echoServer(
  prefix: string,
): Promise<{ server: Server; port: number; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("data", (chunk: Buffer) => socket.write(`${prefix}${chunk.toString()}`));
    socket.on("error", () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, port: (server.address() as { port: number }).port, sockets };
}

type Echo = Awaited<ReturnType<typeof echoServer>>;
let one: Echo;
let two: Echo;
let proxy: FaultProxy;

beforeAll(async () => {
  [one, two] = await Promise.all([echoServer("1:"), echoServer("2:")]);
});

afterAll(async () => {
  for (const { server, sockets } of [one, two]) {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  }
});

afterEach(async () => {
  await proxy?.close();
});

interface Client {
  socket: Socket;
  /** Sends `text` and resolves with the first answer (or rejects if the connection ends). */
  ask(text: string, withinMs?: number): Promise<string>;
  /** Resolves with how the connection ended: an error code, or "end". */
  ended: Promise<string>;
}

function client(port: number): Promise<Client> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    const ended = new Promise<string>((settle) => {
      socket.once("error", (error: NodeJS.ErrnoException) => settle(error.code ?? "error"));
      socket.once("end", () => settle("end"));
      socket.once("close", () => settle("close"));
    });
    socket.once("error", reject);
    socket.once("connect", () => {
      socket.off("error", reject);
      resolve({
        socket,
        ended,
        ask: (text, withinMs = 2_000) =>
          new Promise((answer, fail) => {
            const timer = setTimeout(() => fail(new Error("no answer")), withinMs);
            const closed = () => {
              clearTimeout(timer);
              fail(new Error("closed"));
            };
            socket.once("close", closed);
            socket.once("data", (chunk: Buffer) => {
              clearTimeout(timer);
              socket.off("close", closed);
              answer(chunk.toString());
            });
            socket.write(text);
          }),
      });
    });
  });
}

describe("tcp fault proxy", () => {
  it("forwards both ways and counts connections", async () => {
    proxy = await startFaultProxy({ target: { host: "127.0.0.1", port: one.port } });
    const c = await client(proxy.port);
    expect(await c.ask("hi")).toBe("1:hi");
    expect(proxy.accepted).toBe(1);
    expect(proxy.open).toBe(1);
    c.socket.destroy();
  });

  it("cutAll resets every open connection and says how many", async () => {
    proxy = await startFaultProxy({ target: { host: "127.0.0.1", port: one.port } });
    const [a, b] = await Promise.all([client(proxy.port), client(proxy.port)]);
    await Promise.all([a.ask("a"), b.ask("b")]);
    expect(proxy.cutAll()).toBe(2);
    expect(await a.ended).toBe("ECONNRESET");
    expect(await b.ended).toBe("ECONNRESET");
    expect(proxy.cuts).toBe(2);
  });

  it("refuses new connections at once, keeps the open ones, and accepts again", async () => {
    proxy = await startFaultProxy({ target: { host: "127.0.0.1", port: one.port } });
    const open = await client(proxy.port);
    await proxy.refuse();
    expect(proxy.refusing).toBe(true);
    await expect(client(proxy.port)).rejects.toMatchObject({ code: "ECONNREFUSED" });
    expect(await open.ask("still")).toBe("1:still");
    await proxy.accept();
    expect(await (await client(proxy.port)).ask("again")).toBe("1:again");
    open.socket.destroy();
  });

  it("holds everything until released, then delivers it in order", async () => {
    proxy = await startFaultProxy({ target: { host: "127.0.0.1", port: one.port } });
    const c = await client(proxy.port);
    proxy.hold();
    await expect(c.ask("held", 300)).rejects.toThrow("no answer");
    const answer = new Promise<string>((resolve) =>
      c.socket.once("data", (d) => resolve(String(d))),
    );
    proxy.release();
    expect(await answer).toBe("1:held");
    c.socket.destroy();
  });

  it("delays every chunk", async () => {
    proxy = await startFaultProxy({ target: { host: "127.0.0.1", port: one.port } });
    const c = await client(proxy.port);
    proxy.setDelay(200);
    const started = Date.now();
    expect(await c.ask("slow")).toBe("1:slow");
    // Each way: 2 × 200 ms.
    expect(Date.now() - started).toBeGreaterThanOrEqual(380);
    c.socket.destroy();
  });

  it("cuts before a matching chunk (lost) or right after it (delivered)", async () => {
    proxy = await startFaultProxy({ target: { host: "127.0.0.1", port: one.port } });
    const lost = await client(proxy.port);
    const cutBefore = proxy.cutWhen("toClient", (chunk) => chunk.includes("secret"));
    await expect(lost.ask("secret")).rejects.toThrow();
    expect(String(await cutBefore)).toBe("1:secret");

    const delivered = await client(proxy.port);
    const cutAfter = proxy.cutWhen("toClient", (chunk) => chunk.includes("last"), "after");
    expect(await delivered.ask("last")).toBe("1:last");
    await cutAfter;
    expect(await delivered.ended).toBe("ECONNRESET");
  });

  it("sends new connections to another server after setTarget", async () => {
    proxy = await startFaultProxy({ target: { host: "127.0.0.1", port: one.port } });
    const before = await client(proxy.port);
    proxy.setTarget({ host: "127.0.0.1", port: two.port });
    const after = await client(proxy.port);
    expect(await before.ask("x")).toBe("1:x");
    expect(await after.ask("y")).toBe("2:y");
    before.socket.destroy();
    after.socket.destroy();
  });

  it("passes a server it cannot reach on as a reset", async () => {
    proxy = await startFaultProxy({ target: { host: "127.0.0.1", port: 1 } });
    const c = await client(proxy.port);
    expect(await c.ended).toBe("ECONNRESET");
  });
});
