/**
 * A booking's virtual pod drawn as SVG, from the installer config its workflow builds from: the
 * host on top, each libvirt network and host bridge as a line across (name, bridge, CIDR,
 * forward mode, DHCP), the VMs below (name, vCPUs, memory, disk, ISO), and a link from each VM
 * to every network it is on, labelled with the MAC libvirt gave it when the pod was built.
 *
 * laas-fog pointed its users at a hand-drawn diagram; this one is drawn from the config itself,
 * so it cannot drift from what is built. Every element carries data-* attributes naming what it
 * shows, for whoever reads the drawing by program. Nothing secret is in a pod config except what
 * an ISO URL may carry (user:password@, a signed query): those parts are never drawn.
 */
import type { DomainDefinition, InstallerConfig, NetworkDefinition } from "../config/types";

/** Domain name → (network or bridge name → MAC), as BuildPod records it (lifecycle/pod.ts). */
export type PodMacs = Record<string, Record<string, string>>;

export interface PodDrawingInput {
  hostName: string;
  config: Pick<InstallerConfig, "hypervisor" | "installer">;
  /** The MACs read back when the pod was built; null before (or when the record is gone). */
  macs: PodMacs | null;
}

interface Bus {
  name: string;
  kind: "network" | "bridge";
  label: string;
  detail: string;
  y: number;
}

const MARGIN = 20;
const VM_WIDTH = 230;
const VM_GAP = 20;
const VM_HEIGHT = 118;
const BUS_GAP = 52;
const HOST_HEIGHT = 50;
const MAC_ROOM = 112;

export function podDrawing({ hostName, config, macs }: PodDrawingInput): string {
  const { networks } = config.hypervisor.networks;
  const vms = config.hypervisor.vms.domains;
  const buses = busesOf(networks, vms);
  const width = Math.max(
    720,
    MARGIN * 2 + vms.length * VM_WIDTH + Math.max(0, vms.length - 1) * VM_GAP,
  );
  // Below the last line, room for the MACs written up along the links.
  const vmTop = HOST_HEIGHT + MARGIN * 2 + 30 + Math.max(0, buses.length - 1) * BUS_GAP + MAC_ROOM;
  const height = vmTop + VM_HEIGHT + MARGIN;
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" class="pod" viewBox="0 0 ${width} ${height}" ` +
      `width="${width}" height="${height}" role="img" aria-label="${attr(`pod on ${hostName}`)}" ` +
      `font-family="system-ui, sans-serif" font-size="12">`,
  );
  parts.push(`<title>${text(`Virtual pod on ${hostName}`)}</title>`);
  parts.push(
    `<g class="host" data-host="${attr(hostName)}">` +
      `<rect x="${MARGIN}" y="${MARGIN}" width="${width - MARGIN * 2}" height="${HOST_HEIGHT}" ` +
      `rx="6" fill="#eef2f7" stroke="#46607a"/>` +
      `<text x="${MARGIN + 12}" y="${MARGIN + 22}" font-weight="bold" font-size="14">` +
      `${text(hostName)}</text>` +
      `<text x="${MARGIN + 12}" y="${MARGIN + 40}">${text(
        `pod host · ${config.installer ?? "no installer"} · ${vms.length} VM(s), ` +
          `${networks.length} network(s)`,
      )}</text></g>`,
  );
  for (const bus of buses) {
    const colour = bus.kind === "network" ? "#2f6f9f" : "#8a5a00";
    parts.push(
      `<g class="${bus.kind}" data-${bus.kind}="${attr(bus.name)}">` +
        `<line x1="${MARGIN}" y1="${bus.y}" x2="${width - MARGIN}" y2="${bus.y}" ` +
        `stroke="${colour}" stroke-width="3"/>` +
        `<text x="${MARGIN}" y="${bus.y - 8}" font-weight="bold" fill="${colour}">` +
        `${text(bus.label)}</text>` +
        `<text x="${MARGIN + 14 + bus.label.length * 8}" y="${bus.y - 8}" fill="#333">` +
        `${text(bus.detail)}</text></g>`,
    );
  }
  const byName = new Map(buses.map((bus) => [bus.name, bus]));
  vms.forEach((vm, index) => {
    const x = MARGIN + index * (VM_WIDTH + VM_GAP);
    parts.push(vmBox(vm, x, vmTop, byName, macs?.[vm.name] ?? null));
  });
  parts.push("</svg>");
  return parts.join("\n");
}

/** The networks, then the host bridges VMs are plugged into (kept by the host, not the pod). */
function busesOf(networks: NetworkDefinition[], vms: DomainDefinition[]): Bus[] {
  const buses: Bus[] = networks.map((network, index) => ({
    name: network.name,
    kind: "network",
    label: network.name,
    detail: [
      network.cidr,
      `bridge ${network.brName} ${network.brAddr}`,
      network.forward.used ? `forward ${network.forward.type ?? "nat"}` : "isolated",
      network.dhcp.used
        ? `DHCP ${network.dhcp.rangeStart ?? "?"}–${network.dhcp.rangeEnd ?? "?"}`
        : "no DHCP",
    ].join(" · "),
    y: HOST_HEIGHT + MARGIN * 2 + 30 + index * BUS_GAP,
  }));
  const bridges = new Set<string>();
  for (const vm of vms) {
    for (const nic of vm.interfaces) if (nic.type === "bridge") bridges.add(nic.name);
  }
  for (const bridge of bridges) {
    buses.push({
      name: bridge,
      kind: "bridge",
      label: bridge,
      detail: "host bridge (the host's own network)",
      y: HOST_HEIGHT + MARGIN * 2 + 30 + buses.length * BUS_GAP,
    });
  }
  return buses;
}

function vmBox(
  vm: DomainDefinition,
  x: number,
  top: number,
  buses: Map<string, Bus>,
  macs: Record<string, string> | null,
): string {
  const lines = [
    `${vm.vcpus} vCPU · ${formatMemory(vm.memory)}`,
    `disk ${vm.disk}`,
    vm.iso.used ? `ISO ${isoShown(vm.iso.location, vm.iso.url)}` : "no ISO",
  ];
  const parts: string[] = [`<g class="vm" data-vm="${attr(vm.name)}">`];
  vm.interfaces.forEach((nic, index) => {
    const bus = buses.get(nic.name);
    if (!bus) return;
    const linkX = x + 24 + index * 40;
    const mac = macs?.[nic.name] ?? null;
    parts.push(
      `<g class="link" data-vm="${attr(vm.name)}" data-network="${attr(nic.name)}" ` +
        `data-mac="${attr(mac ?? "")}">` +
        `<line x1="${linkX}" y1="${bus.y}" x2="${linkX}" y2="${top}" stroke="#555" ` +
        `stroke-width="1.5"/><circle cx="${linkX}" cy="${bus.y}" r="4" fill="#555"/>` +
        // Written up along its link, so that neighbouring links' MACs never overlap.
        `<text x="${linkX - 4}" y="${top - 6}" font-size="10" fill="#555" ` +
        `transform="rotate(-90 ${linkX - 4} ${top - 6})">${text(mac ?? "not built")}</text></g>`,
    );
  });
  parts.push(
    `<rect x="${x}" y="${top}" width="${VM_WIDTH}" height="${VM_HEIGHT}" rx="6" ` +
      `fill="#fff" stroke="#333"/>` +
      `<text x="${x + 10}" y="${top + 20}" font-weight="bold" font-size="13">${text(vm.name)}</text>`,
  );
  lines.forEach((line, index) => {
    parts.push(
      `<text x="${x + 10}" y="${top + 42 + index * 18}">${text(ellipsis(line, 34))}</text>`,
    );
  });
  const on = vm.interfaces.map((nic) => nic.name).join(", ");
  parts.push(
    `<text x="${x + 10}" y="${top + 42 + lines.length * 18}" fill="#555">` +
      `${text(ellipsis(`on ${on || "no network"}`, 34))}</text>`,
  );
  parts.push("</g>");
  return parts.join("");
}

/** KiB, as the domain file gives it, in GiB or MiB. */
export function formatMemory(kib: number): string {
  const gib = kib / 1024 / 1024;
  if (gib >= 1) return `${Number.isInteger(gib) ? gib : gib.toFixed(1)} GiB`;
  return `${Math.round(kib / 1024)} MiB`;
}

/** Where the ISO is kept, or its URL without credentials, query or fragment. */
export function isoShown(location: string | null, url: string | null): string {
  if (location) return location;
  if (!url) return "(none given)";
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
  } catch {
    return "(an URL that does not parse)";
  }
}

function ellipsis(value: string, max: number): string {
  return value.length <= max ? value : `…${value.slice(value.length - max + 1)}`;
}

function text(value: string): string {
  return value.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function attr(value: string): string {
  return text(value).replace(/"/g, "&quot;").replace(/'/g, "&#39;");
}
