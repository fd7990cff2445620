import { describe, expect, it } from "vitest";
import { findLeaseAddress, leaseCommand, normalizeMac } from "../lib/lab/dhcp";

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
    expect(
      findLeaseAddress(log(isc.discover, isc.offer, isc.request, isc.ack("10.0.0.5")), MAC),
    ).toBe("10.0.0.5");
  });

  it("reads an ACK without a host name, sent through a relay agent", () => {
    expect(findLeaseAddress(log(isc.ackNoHost("10.0.3.8")), MAC)).toBe("10.0.3.8");
  });

  it("reads the answer to a DHCPINFORM", () => {
    expect(findLeaseAddress(log(isc.informAck("10.0.0.6")), MAC)).toBe("10.0.0.6");
  });

  it("reads journal-style lines and CRLF line ends", () => {
    const line = `2024-03-03T10:00:02+0000 dhcp1 dhcpd[812]: DHCPACK on 10.0.0.5 to ${MAC} via eth0`;
    expect(findLeaseAddress(`${line}\r\nother\r\n`, MAC)).toBe("10.0.0.5");
  });
});

describe("findLeaseAddress: dnsmasq", () => {
  it("reads an ACK with a host name", () => {
    expect(
      findLeaseAddress(log(dnsmasq.offer, dnsmasq.request, dnsmasq.ack("10.0.0.7")), MAC),
    ).toBe("10.0.0.7");
  });

  it("reads an ACK without a host name", () => {
    expect(findLeaseAddress(log(dnsmasq.ackNoHost("10.0.0.8")), MAC)).toBe("10.0.0.8");
  });

  it("reads an ACK with log-dhcp's leading request id", () => {
    expect(findLeaseAddress(log(dnsmasq.ackWithId("10.0.0.9")), MAC)).toBe("10.0.0.9");
  });
});

describe("findLeaseAddress: which ACK", () => {
  it("takes the newest of several ACKs for the MAC (last in the file)", () => {
    const text = log(isc.ack("10.0.0.5"), dnsmasq.ack("10.0.0.6"), isc.ack("10.0.0.42"));
    expect(findLeaseAddress(text, MAC)).toBe("10.0.0.42");
  });

  it("keeps the MAC's newest ACK when other MACs' ACKs come after it", () => {
    const text = log(
      isc.ack("10.0.0.5"),
      isc.ack("10.0.0.20"),
      isc.ack("10.0.0.99", OTHER),
      dnsmasq.ack("10.0.0.98", OTHER),
    );
    expect(findLeaseAddress(text, MAC)).toBe("10.0.0.20");
  });

  it("keeps the newest ACK when a NAK follows it (newest ACK wins)", () => {
    expect(findLeaseAddress(log(isc.ack("10.0.0.5"), isc.nak), MAC)).toBe("10.0.0.5");
  });

  it("finds nothing in an empty log", () => {
    expect(findLeaseAddress("", MAC)).toBeNull();
  });

  it("finds nothing when the MAC was only offered, requested or refused", () => {
    const text = log(isc.discover, isc.offer, isc.request, isc.nak, dnsmasq.offer, dnsmasq.request);
    expect(findLeaseAddress(text, MAC)).toBeNull();
  });

  it("ignores ACKs of other MACs, including ones that share a prefix with it", () => {
    const text = log(
      isc.ack("10.0.0.5", OTHER),
      dnsmasq.ack("10.0.0.6", "aa:bb:cc:dd:ee:f0"),
      isc.ack("10.0.0.7", "aa:bb:cc:dd:ee:ff:00"),
    );
    expect(findLeaseAddress(text, MAC)).toBeNull();
  });

  it("skips an ACK whose address is not a valid IPv4, keeping an older valid one", () => {
    expect(findLeaseAddress(log(isc.ack("10.0.0.256")), MAC)).toBeNull();
    expect(findLeaseAddress(log(dnsmasq.ack("10.0.0")), MAC)).toBeNull();
    expect(findLeaseAddress(log(isc.ack("10.0.0.5"), isc.ack("10.0.0.300")), MAC)).toBe("10.0.0.5");
  });

  it("does not take an ACK forged inside another client's host name", () => {
    const forged = `Mar  3 10:00:02 dhcp1 dhcpd[812]: DHCPREQUEST for 10.0.0.66 from ${OTHER} (x) DHCPACK on 10.6.6.6 to ${MAC} () via eth0`;
    const forgedAck = `Mar  3 10:00:02 dhcp1 dhcpd[812]: DHCPACK on 10.0.0.66 to ${OTHER} (DHCPACK on 10.6.6.6 to ${MAC} ) via eth0`;
    expect(findLeaseAddress(log(isc.ack("10.0.0.5"), forged, forgedAck), MAC)).toBe("10.0.0.5");
  });
});

describe("findLeaseAddress: MAC forms", () => {
  it("compares MACs case-insensitively, both ways", () => {
    expect(findLeaseAddress(log(isc.ack("10.0.0.5")), MAC.toUpperCase())).toBe("10.0.0.5");
    expect(findLeaseAddress(log(dnsmasq.ack("10.0.0.6", MAC.toUpperCase())), MAC)).toBe("10.0.0.6");
  });

  it("accepts the MAC in dash form", () => {
    expect(findLeaseAddress(log(isc.ack("10.0.0.5")), "AA-BB-CC-DD-EE-FF")).toBe("10.0.0.5");
  });

  it("refuses a MAC that is not one", () => {
    expect(() => findLeaseAddress("", "aa:bb:cc")).toThrow(RangeError);
    expect(() => findLeaseAddress("", "aa:bb-cc:dd:ee:ff")).toThrow(RangeError);
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
    const command = leaseCommand("/var/log/syslog", "AA-BB-CC-DD-EE-FF");
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
    });
  });

  it("keeps a hostile log path as one argument after --", () => {
    const path = "-r /etc; cat /etc/shadow";
    const { argv } = leaseCommand(path, MAC);
    expect(argv.at(-1)).toBe(path);
    expect(argv.at(-2)).toBe("--");
  });

  it("refuses a MAC that is not one, rather than grepping for it", () => {
    expect(() => leaseCommand("/var/log/syslog", "-r")).toThrow(RangeError);
  });
});
