import { describe, expect, it } from "vitest";
import { findLeaseAddress, leaseCommand, normalizeMac } from "../lib/lab/dhcp";

const inSyslog = (text: string, mac: string) => findLeaseAddress(text, mac, "syslog");

const MAC = "aa:bb:cc:dd:ee:ff";
const OTHER = "11:22:33:44:55:66";

/** Real-looking syslog lines, as isc-dhcpd writes them. */
const isc = {
  discover: `Mar  3 10:00:01 dhcp1 dhcpd[812]: DHCPDISCOVER from ${MAC} via eth0`,
  offer: `Mar  3 10:00:01 dhcp1 dhcpd[812]: DHCPOFFER on 10.0.0.5 to ${MAC} (pod1) via eth0`,
  request: `Mar  3 10:00:02 dhcp1 dhcpd[812]: DHCPREQUEST for 10.0.0.5 (10.0.0.1) from ${MAC} (pod1) via eth0`,
  ack: (ip: string, mac = MAC) =>
    `Mar  3 10:00:02 dhcp1 dhcpd[812]: DHCPACK on ${ip} to ${mac} (pod1) via eth0`,
  ackNoHost: (ip: string, mac = MAC) =>
    `Mar  3 10:00:02 dhcp1 dhcpd[812]: DHCPACK on ${ip} to ${mac} via 10.0.0.254`,
  informAck: (ip: string, mac = MAC) =>
    `Mar  3 10:00:03 dhcp1 dhcpd[812]: DHCPACK to ${ip} (${mac}) via eth0`,
  nak: `Mar  3 10:00:04 dhcp1 dhcpd[812]: DHCPNAK on 10.0.0.9 to ${MAC} via eth0`,
};

/** dnsmasq lines, plain and with log-dhcp's request id. */
const dnsmasq = {
  offer: `Mar  3 10:00:01 relay dnsmasq-dhcp[4411]: DHCPOFFER(br0) 10.0.0.7 ${MAC}`,
  request: `Mar  3 10:00:01 relay dnsmasq-dhcp[4411]: DHCPREQUEST(br0) 10.0.0.7 ${MAC}`,
  ack: (ip: string, mac = MAC) =>
    `Mar  3 10:00:02 relay dnsmasq-dhcp[4411]: DHCPACK(br0) ${ip} ${mac} pod1`,
  ackNoHost: (ip: string, mac = MAC) =>
    `Mar  3 10:00:02 relay dnsmasq-dhcp[4411]: DHCPACK(br0) ${ip} ${mac} `,
  ackWithId: (ip: string, mac = MAC) =>
    `Mar  3 10:00:02 relay dnsmasq-dhcp[4411]: 3173129068 DHCPACK(br0) ${ip} ${mac} pod1`,
};

const log = (...lines: string[]) => `${lines.join("\n")}\n`;

describe("findLeaseAddress: isc-dhcpd", () => {
  it("reads the address of an ACK with a host name", () => {
    expect(inSyslog(log(isc.discover, isc.offer, isc.request, isc.ack("10.0.0.5")), MAC)).toBe(
      "10.0.0.5",
    );
  });

  it("reads an ACK without a host name, sent through a relay agent", () => {
    expect(inSyslog(log(isc.ackNoHost("10.0.3.8")), MAC)).toBe("10.0.3.8");
  });

  it("reads the answer to a DHCPINFORM", () => {
    expect(inSyslog(log(isc.informAck("10.0.0.6")), MAC)).toBe("10.0.0.6");
  });

  it("reads journal-style lines and CRLF line ends", () => {
    const line = `2024-03-03T10:00:02+0000 dhcp1 dhcpd[812]: DHCPACK on 10.0.0.5 to ${MAC} via eth0`;
    expect(inSyslog(`${line}\r\nother\r\n`, MAC)).toBe("10.0.0.5");
  });
});

describe("findLeaseAddress: dnsmasq", () => {
  it("reads an ACK with a host name", () => {
    expect(inSyslog(log(dnsmasq.offer, dnsmasq.request, dnsmasq.ack("10.0.0.7")), MAC)).toBe(
      "10.0.0.7",
    );
  });

  it("reads an ACK without a host name", () => {
    expect(inSyslog(log(dnsmasq.ackNoHost("10.0.0.8")), MAC)).toBe("10.0.0.8");
  });

  it("reads an ACK with log-dhcp's leading request id", () => {
    expect(inSyslog(log(dnsmasq.ackWithId("10.0.0.9")), MAC)).toBe("10.0.0.9");
  });
});

describe("findLeaseAddress: which ACK", () => {
  it("takes the newest of several ACKs for the MAC (last in the file)", () => {
    const text = log(isc.ack("10.0.0.5"), dnsmasq.ack("10.0.0.6"), isc.ack("10.0.0.42"));
    expect(inSyslog(text, MAC)).toBe("10.0.0.42");
  });

  it("keeps the MAC's newest ACK when other MACs' ACKs come after it", () => {
    const text = log(
      isc.ack("10.0.0.5"),
      isc.ack("10.0.0.20"),
      isc.ack("10.0.0.99", OTHER),
      dnsmasq.ack("10.0.0.98", OTHER),
    );
    expect(inSyslog(text, MAC)).toBe("10.0.0.20");
  });

  it("keeps the newest ACK when a NAK follows it (newest ACK wins)", () => {
    expect(inSyslog(log(isc.ack("10.0.0.5"), isc.nak), MAC)).toBe("10.0.0.5");
  });

  it("finds nothing in an empty log", () => {
    expect(inSyslog("", MAC)).toBeNull();
  });

  it("finds nothing when the MAC was only offered, requested or refused", () => {
    const text = log(isc.discover, isc.offer, isc.request, isc.nak, dnsmasq.offer, dnsmasq.request);
    expect(inSyslog(text, MAC)).toBeNull();
  });

  it("ignores ACKs of other MACs, including ones that share a prefix with it", () => {
    const text = log(
      isc.ack("10.0.0.5", OTHER),
      dnsmasq.ack("10.0.0.6", "aa:bb:cc:dd:ee:f0"),
      isc.ack("10.0.0.7", "aa:bb:cc:dd:ee:ff:00"),
    );
    expect(inSyslog(text, MAC)).toBeNull();
  });

  it("skips an ACK whose address is not a valid IPv4, keeping an older valid one", () => {
    expect(inSyslog(log(isc.ack("10.0.0.256")), MAC)).toBeNull();
    expect(inSyslog(log(dnsmasq.ack("10.0.0")), MAC)).toBeNull();
    expect(inSyslog(log(isc.ack("10.0.0.5"), isc.ack("10.0.0.300")), MAC)).toBe("10.0.0.5");
  });

  it("does not take an ACK forged inside another client's host name", () => {
    const forged = `Mar  3 10:00:02 dhcp1 dhcpd[812]: DHCPREQUEST for 10.0.0.66 from ${OTHER} (x) DHCPACK on 10.6.6.6 to ${MAC} () via eth0`;
    const forgedAck = `Mar  3 10:00:02 dhcp1 dhcpd[812]: DHCPACK on 10.0.0.66 to ${OTHER} (DHCPACK on 10.6.6.6 to ${MAC} ) via eth0`;
    expect(inSyslog(log(isc.ack("10.0.0.5"), forged, forgedAck), MAC)).toBe("10.0.0.5");
  });
});

describe("findLeaseAddress: MAC forms", () => {
  it("compares MACs case-insensitively, both ways", () => {
    expect(inSyslog(log(isc.ack("10.0.0.5")), MAC.toUpperCase())).toBe("10.0.0.5");
    expect(inSyslog(log(dnsmasq.ack("10.0.0.6", MAC.toUpperCase())), MAC)).toBe("10.0.0.6");
  });

  it("accepts the MAC in dash form", () => {
    expect(inSyslog(log(isc.ack("10.0.0.5")), "AA-BB-CC-DD-EE-FF")).toBe("10.0.0.5");
  });

  it("refuses a MAC that is not one", () => {
    expect(() => inSyslog("", "aa:bb:cc")).toThrow(RangeError);
    expect(() => inSyslog("", "aa:bb-cc:dd:ee:ff")).toThrow(RangeError);
  });
});

describe("normalizeMac", () => {
  it("gives lower-case, colon-separated, padded octets", () => {
    expect(normalizeMac(" AA-BB-CC-0D-e-FF ")).toBe("aa:bb:cc:0d:0e:ff");
    expect(normalizeMac("aabb.ccdd.eeff")).toBeNull();
    expect(normalizeMac("gg:bb:cc:dd:ee:ff")).toBeNull();
  });
});

describe("leaseCommand", () => {
  it("greps the log for both MAC forms, with fixed words and separate arguments", () => {
    const command = leaseCommand("/var/log/syslog", "AA-BB-CC-DD-EE-FF", "syslog");
    expect(command).toEqual({
      argv: [
        "grep",
        "-a",
        "-i",
        "-F",
        "-e",
        "aa:bb:cc:dd:ee:ff",
        "-e",
        "aa-bb-cc-dd-ee-ff",
        "--",
        "/var/log/syslog",
      ],
      timeoutSeconds: 30,
      okExitCodes: [0, 1],
      idempotent: true,
    });
  });

  it("keeps a hostile log path as one argument after --", () => {
    const path = "-r /etc; cat /etc/shadow";
    const { argv } = leaseCommand(path, MAC, "syslog");
    expect(argv.at(-1)).toBe(path);
    expect(argv.at(-2)).toBe("--");
  });

  it("refuses a MAC that is not one, rather than grepping for it", () => {
    expect(() => leaseCommand("/var/log/syslog", "-r", "syslog")).toThrow(RangeError);
  });
});

describe("findLeaseAddress: syslog lines count only as the DHCP daemon's own", () => {
  it("does not take another program's line quoting an ACK (sshd's invalid user)", () => {
    const sshd = `Mar  3 10:00:09 dhcp1 sshd[901]: Invalid user DHCPACK on 10.0.0.97 to ${MAC.replaceAll(":", "-")} from 10.0.0.50 port 4242`;
    expect(inSyslog(log(isc.ack("10.0.0.5"), sshd), MAC)).toBe("10.0.0.5");
    expect(inSyslog(log(sshd), MAC)).toBeNull();
  });

  it("does not take a daemon's tag quoted inside another program's message", () => {
    const quoted = `Mar  3 10:00:09 dhcp1 sshd[901]: Invalid user x dnsmasq-dhcp[4411]: DHCPACK(br0) 10.0.0.97 ${MAC} from 10.0.0.50`;
    const quotedIsc = `Mar  3 10:00:09 dhcp1 sshd[901]: Invalid user dhcpd[812]: DHCPACK on 10.0.0.97 to ${MAC} via eth0`;
    expect(inSyslog(log(quoted, quotedIsc), MAC)).toBeNull();
  });

  it("does not take a tagged line whose message does not start with the ACK", () => {
    const late = `Mar  3 10:00:09 dhcp1 dhcpd[812]: reuse_lease: DHCPACK on 10.0.0.97 to ${MAC} via eth0`;
    expect(inSyslog(log(late), MAC)).toBeNull();
  });

  it("does not take a line without a syslog header", () => {
    expect(inSyslog(`dhcpd[812]: DHCPACK on 10.0.0.97 to ${MAC} via eth0\n`, MAC)).toBeNull();
  });
});

describe("findLeaseAddress: isc-dhcpd's lease file", () => {
  const block = (ip: string, mac: string, extra = "") =>
    `lease ${ip} {\n  starts 4 2026/12/01 10:00:00;\n  ends 4 2026/12/01 22:00:00;\n${extra}  hardware ethernet ${mac};\n  uid "\\001RT\\000\\252\\273\\314";\n  client-hostname "pod1";\n}\n`;
  const active = "  binding state active;\n  next binding state free;\n";
  const free = "  binding state free;\n";
  const inLeases = (text: string) => findLeaseAddress(text, MAC, "dhcpd-leases");

  it("takes the last active lease for the MAC", () => {
    const text = `# The format of this file is documented in the dhcpd.leases(5) manual page.\nauthoring-byte-order little-endian;\n${block("10.0.0.5", MAC, active)}${block("10.0.0.9", OTHER, active)}${block("10.0.0.6", MAC.toUpperCase(), active)}`;
    expect(inLeases(text)).toBe("10.0.0.6");
  });

  it("skips a lease that is no longer active", () => {
    expect(inLeases(block("10.0.0.5", MAC, active) + block("10.0.0.6", MAC, free))).toBe(
      "10.0.0.5",
    );
    expect(inLeases(block("10.0.0.6", MAC, free))).toBeNull();
  });

  it("takes no address whose last block freed it or gave it to another MAC", () => {
    const released = "  binding state released;\n";
    expect(inLeases(block("10.0.0.5", MAC, active) + block("10.0.0.5", MAC, free))).toBeNull();
    expect(inLeases(block("10.0.0.7", MAC, active) + block("10.0.0.7", MAC, released))).toBeNull();
    const reassigned = block("10.0.0.5", MAC, active) + block("10.0.0.5", OTHER, active);
    expect(inLeases(reassigned)).toBeNull();
    expect(inLeases(block("10.0.0.4", MAC, active) + reassigned)).toBe("10.0.0.4");
  });

  it("is not fooled by a client host name that reads like a lease", () => {
    const forged = `lease 10.0.0.9 {\n  binding state active;\n  hardware ethernet ${OTHER};\n  client-hostname "x\\"; } lease 10.6.6.6 { binding state active; hardware ethernet ${MAC}; ";\n}\n`;
    expect(inLeases(block("10.0.0.5", MAC, active) + forged)).toBe("10.0.0.5");
  });

  it("skips other top-level blocks and comments", () => {
    const host = `host fixed { hardware ethernet ${MAC}; fixed-address 10.6.6.6; }\n`;
    expect(inLeases(`${host}# lease 10.6.6.7 { hardware ethernet ${MAC}; }\n`)).toBeNull();
  });

  it("reads the whole file (a lease spans lines)", () => {
    expect(leaseCommand("/var/lib/dhcp/dhcpd.leases", MAC, "dhcpd-leases")).toEqual({
      argv: ["cat", "--", "/var/lib/dhcp/dhcpd.leases"],
      timeoutSeconds: 30,
      idempotent: true,
    });
  });
});

describe("findLeaseAddress: dnsmasq's lease file", () => {
  const inLeases = (text: string) => findLeaseAddress(text, MAC, "dnsmasq-leases");

  it("takes the lease that expires last, whatever the order of lines", () => {
    const text = `1764600000 ${MAC} 10.0.0.5 pod1 01:${MAC}\n1764590000 ${OTHER} 10.0.0.9 * *\n1764500000 ${MAC} 10.0.0.4 pod1 *\n`;
    expect(inLeases(text)).toBe("10.0.0.5");
  });

  it("counts expiry 0 as an infinite lease", () => {
    expect(inLeases(`1764600000 ${MAC} 10.0.0.5 * *\n0 ${MAC} 10.0.0.7 * *\n`)).toBe("10.0.0.7");
  });

  it("skips the DHCPv6 part and lines that are not leases", () => {
    const text = `duid 00:01:00:01:2c:5e\n1764600000 1234 fd00::5 pod1 00:01\nnot a lease ${MAC} 10.0.0.9\n`;
    expect(inLeases(text)).toBeNull();
  });

  it("greps the file for the MAC", () => {
    expect(leaseCommand("/var/lib/misc/dnsmasq.leases", MAC, "dnsmasq-leases").argv).toEqual([
      "grep",
      "-a",
      "-i",
      "-F",
      "-e",
      MAC,
      "-e",
      MAC.replaceAll(":", "-"),
      "--",
      "/var/lib/misc/dnsmasq.leases",
    ]);
  });
});
