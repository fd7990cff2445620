/**
 * The status page's guards, without a browser: the token (bearer, cookie, the one-time query
 * swapped for a cookie), loopback only without one, what an answer may hold, and the pod drawing's
 * escaping and its ISO URLs without their credentials.
 */
import { afterEach, describe, expect, it } from "vitest";
import { handler as webHandler } from "../functions/web/index";
import { installRuntime, type Runtime, resetRuntime } from "../lib/app/runtime";
import type { InstallerConfig } from "../lib/config/types";
import { type Booking, OPEN_END } from "../lib/domain/booking";
import { newHost } from "../lib/domain/host";
import { newBooking } from "../lib/lifecycle/transitions";
import { silentLogger } from "../lib/log";
import { isoShown, podDrawing } from "../lib/pod/drawing";
import { Secret } from "../lib/secret";
import { createWebApp, type WebRequest, type WebSources } from "../lib/web/app";
import { isLoopback } from "../lib/web/auth";
import { functionUrlResultOf, webRequestOf } from "../lib/web/lambda-url";
import { requireTokenOffLoopback, startWebServer } from "../lib/web/server";
import { dashboardBooking } from "./helpers/bookings";

const TOKEN = "s3cret-page-token-0123456789";
const SEALED = "v2.sealed.credentials.never.shown";

function booking(): Booking {
  const made = newBooking(dashboardBooking({ id: "42", hostName: "pod1" }), new Date());
  return {
    ...made,
    access: {
      vpnUser: "ada",
      vpnUserDn: "uid=ada,ou=People,dc=x",
      vpnEntryUuid: null,
      vpnIntendedDn: null,
      vpnPerson: null,
      vpnAccountFrom: null,
      rootPasswordSet: true,
      sshKey: null,
      vpnOthers: [],
      otherSshKeys: {},
      sealedCredentials: SEALED,
      handover: "pending",
      handoverError: null,
    },
  };
}

function sources(token: string | null, config?: InstallerConfig): WebSources {
  const stored = booking();
  return {
    store: {
      listHosts: async () => [{ ...newHost("pod1", null), hostKey: "ssh-ed25519 AAAAkey" }],
      listBookings: async () => [stored],
      getBooking: async (id) => (id === stored.id ? stored : null),
    },
    engine: { history: async () => null },
    installerConfigFor: () => {
      if (!config) throw new Error("no config for installer");
      return config;
    },
    metrics: async () => ({ contentType: "text/plain; version=0.0.4", body: "laas_up 1\n" }),
    token: token === null ? null : new Secret(token, "test"),
    secureCookie: false,
  };
}

function get(path: string, headers: WebRequest["headers"] = {}, query = ""): WebRequest {
  return { method: "GET", path, query: new URLSearchParams(query), headers };
}

describe("the page's token", () => {
  const app = createWebApp(sources(TOKEN));

  it("is asked for, by every route", async () => {
    for (const path of ["/", "/api/overview", "/api/bookings/42", "/metrics"]) {
      expect((await app(get(path))).status, path).toBe(401);
    }
    expect((await app(get("/api/overview", { authorization: "Bearer wrong" }))).status).toBe(401);
  });

  it("is taken as a bearer token or a cookie", async () => {
    expect((await app(get("/api/overview", { authorization: `Bearer ${TOKEN}` }))).status).toBe(
      200,
    );
    expect((await app(get("/metrics", { cookie: `a=b; laas_token=${TOKEN}` }))).status).toBe(200);
  });

  it("given once in the address, is swapped for a cookie scripts cannot read", async () => {
    const answer = await app(get("/", {}, `token=${TOKEN}`));
    expect(answer.status).toBe(303);
    expect(answer.headers.location).toBe("/");
    expect(answer.headers["set-cookie"]).toMatch(/^laas_token=.+; HttpOnly; SameSite=Strict/);
    const wrong = await app(get("/", {}, "token=nope"));
    expect(wrong.status).toBe(401);
    expect(wrong.headers["set-cookie"]).toBeUndefined();
  });

  it("is needed anywhere but loopback: the server refuses to start without one", async () => {
    expect(() => requireTokenOffLoopback("0.0.0.0", null)).toThrow(/web\.token/);
    expect(() => requireTokenOffLoopback("10.1.2.3", null)).toThrow(/reachable from other/);
    expect(() => requireTokenOffLoopback("0.0.0.0", new Secret(TOKEN, "t"))).not.toThrow();
    await expect(
      startWebServer(createWebApp(sources(null)), {
        address: "0.0.0.0",
        port: 0,
        token: null,
        logger: silentLogger,
      }),
    ).rejects.toThrow(/web\.token/);
    for (const address of ["127.0.0.1", "127.8.9.10", "::1", "localhost"]) {
      expect(isLoopback(address), address).toBe(true);
    }
    for (const address of ["0.0.0.0", "::", "10.0.0.1", "128.0.0.1"]) {
      expect(isLoopback(address), address).toBe(false);
    }
  });

  it("is not needed on loopback when none is set", async () => {
    const open = createWebApp(sources(null));
    expect((await open(get("/api/overview"))).status).toBe(200);
  });
});

describe("the page's answers", () => {
  const app = createWebApp(sources(null));

  it("hold chosen fields only: no sealed credentials, no host key", async () => {
    const overview = (await app(get("/api/overview"))).body;
    const detail = (await app(get("/api/bookings/42"))).body;
    for (const body of [overview, detail]) {
      expect(body).not.toContain(SEALED);
      expect(body).not.toContain("AAAAkey");
      expect(body).not.toContain("sealedCredentials");
    }
    expect(JSON.parse(overview).bookings[0]).toMatchObject({ id: "42", vpnUser: "ada" });
  });

  it("give no end for a booking open until ended (a job's, a manual one)", async () => {
    const open = { ...booking(), end: OPEN_END };
    const openApp = createWebApp({
      ...sources(null),
      store: {
        listHosts: async () => [],
        listBookings: async () => [open],
        getBooking: async () => open,
      },
    });
    const overview = JSON.parse((await openApp(get("/api/overview"))).body);
    expect(overview.bookings[0].end).toBeNull();
    // One with an end has it.
    expect(JSON.parse((await app(get("/api/overview"))).body).bookings[0].end).not.toBeNull();
  });

  it("say what is not there, and serve only GET", async () => {
    expect((await app(get("/api/bookings/43"))).status).toBe(404);
    expect((await app(get("/api/bookings/%E0%A4%A"))).status).toBe(400);
    expect((await app(get("/nothing"))).status).toBe(404);
    expect((await app({ ...get("/api/overview"), method: "POST" })).status).toBe(405);
    // A booking whose installer has no config: no drawing, and why.
    const pod = await app(get("/api/bookings/42/pod.svg"));
    expect(pod.status).toBe(404);
    expect(pod.body).toMatch(/no config for installer/);
  });

  it("serve the page with a policy that allows no other origin", async () => {
    const page = await app(get("/"));
    expect(page.headers["content-security-policy"]).toMatch(/default-src 'none'/);
    expect(page.body).toMatch(/<title>LaaS — lab status<\/title>/);
  });
});

describe("the pod drawing", () => {
  const config = {
    installer: "Fuel",
    hypervisor: {
      networks: {
        file: "n.yaml",
        template: "t",
        networks: [
          {
            name: "admin<&>",
            brName: "br-admin",
            brAddr: "10.0.0.1",
            cidr: "10.0.0.0/24",
            netmask: "255.255.255.0",
            dhcp: { used: false, rangeStart: null, rangeEnd: null },
            forward: { used: true, type: "nat" },
          },
        ],
      },
      vms: {
        file: "d.yaml",
        template: "t",
        domains: [
          {
            name: 'vm"one',
            disk: "/var/lib/libvirt/images/one.qcow2",
            memory: 4194304,
            vcpus: 2,
            interfaces: [
              { name: "admin<&>", type: "network" as const },
              { name: "br-ext", type: "bridge" as const },
            ],
            iso: {
              used: true,
              url: "https://mirror-user:mirror-pass@mirror.example.org/iso/one.iso?sig=abc#x",
              location: null,
              sha256: null,
            },
          },
        ],
      },
    },
  } as unknown as InstallerConfig;

  it("escapes every value, and draws host bridges beside the networks", () => {
    const svg = podDrawing({ hostName: "pod<1>", config, macs: null });
    expect(svg).not.toMatch(/admin<&>|pod<1>|="vm"one/);
    expect(svg).toContain('data-network="admin&lt;&amp;&gt;"');
    expect(svg).toContain('data-vm="vm&quot;one"');
    expect(svg).toContain('data-bridge="br-ext"');
    expect(svg).toContain("4 GiB");
    // Not built yet: the links are drawn, without MACs.
    expect(svg).toContain('data-mac=""');
  });

  it("draws an ISO URL without its credentials, query or fragment", () => {
    const svg = podDrawing({ hostName: "pod1", config, macs: null });
    expect(svg).not.toMatch(/mirror-pass|mirror-user|sig=abc/);
    expect(isoShown(null, "https://u:p@h.example/a.iso?t=1")).toBe("https://h.example/a.iso");
    expect(isoShown("/var/lib/a.iso", "https://u:p@h/a.iso")).toBe("/var/lib/a.iso");
    expect(isoShown(null, "not a url")).toMatch(/does not parse/);
  });
});

describe("the page behind a Lambda function URL", () => {
  const app = createWebApp(sources(TOKEN));

  it("takes the token from the cookies a function URL gives apart, and sets it the same way", async () => {
    const withCookie = webRequestOf({
      rawPath: "/api/overview",
      rawQueryString: "",
      cookies: ["other=1", `laas_token=${TOKEN}`],
      headers: {},
      requestContext: { http: { method: "GET" } },
    });
    expect((await app(withCookie)).status).toBe(200);
    const first = functionUrlResultOf(
      await app(
        webRequestOf({
          rawPath: "/",
          rawQueryString: `token=${TOKEN}`,
          requestContext: { http: { method: "GET" } },
        }),
      ),
    );
    expect(first.statusCode).toBe(303);
    expect(first.headers["set-cookie"]).toBeUndefined();
    expect(first.cookies?.[0]).toMatch(/^laas_token=/);
    const bearer = webRequestOf({
      rawPath: "/metrics",
      headers: { authorization: `Bearer ${TOKEN}` },
      requestContext: { http: { method: "GET" } },
    });
    expect((await app(bearer)).status).toBe(200);
    expect((await app(webRequestOf({ rawPath: "/metrics" }))).status).toBe(401);
  });
});

describe("the web function", () => {
  /** A runtime with just what the page reads, its store counting full reads of the bookings. */
  function runtimeWith(token: string | null) {
    const reads = { bookings: 0 };
    const base = sources(null);
    const rt = {
      config: {
        web:
          token === null
            ? null
            : { address: "127.0.0.1", port: 8080, token: new Secret(token, "t") },
        cleanConfig: { fog: {} },
      },
      store: {
        ...base.store,
        listBookings: async () => {
          reads.bookings += 1;
          return base.store.listBookings();
        },
      },
      engine: base.engine,
      imagerFor: () => ({ activeTasks: async () => [] }),
      now: () => new Date(),
    } as unknown as Runtime;
    return { rt, reads };
  }
  const overview = {
    rawPath: "/api/overview",
    headers: { authorization: `Bearer ${TOKEN}` },
    requestContext: { http: { method: "GET" } },
  };
  afterEach(() => resetRuntime());

  it("serves nothing without web.token", async () => {
    installRuntime(runtimeWith(null).rt);
    const answer = await webHandler(overview);
    expect(answer.statusCode).toBe(503);
    expect(answer.body).toMatch(/no web\.token/);
  });

  it("keeps one app per runtime while warm, and makes another for a new runtime", async () => {
    const first = runtimeWith(TOKEN);
    installRuntime(first.rt);
    expect((await webHandler(overview)).statusCode).toBe(200);
    expect((await webHandler(overview)).statusCode).toBe(200);
    // The second request within the overview's second was served by the same app's cache.
    expect(first.reads.bookings).toBe(1);
    const second = runtimeWith(TOKEN);
    installRuntime(second.rt);
    expect((await webHandler(overview)).statusCode).toBe(200);
    expect(second.reads.bookings).toBe(1);
  });
});
