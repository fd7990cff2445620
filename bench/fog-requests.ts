/**
 * FOG requests per cycle with 1, 10, 50 and 200 hosts imaging, counted at the FOG simulator:
 * the lab's watcher (one `task/current` read for all) against the baseline, where each imaging
 * execution's own look (the old CheckImaging: `progress()` of its host) read `task/current`
 * once per poll — and every answer lists every active task, so bytes grow with the square.
 */
import { watch } from "../lib/lifecycle/watch";
import { startWatcherLab, waitingForImaging } from "../test/helpers/watcher-lab";

export interface FogRequestRow {
  hosts: number;
  design: "watcher" | "baseline";
  requestsPerCycle: number;
  taskCurrentPerCycle: number;
  kilobytesPerCycle: number;
}

const CYCLES = 5;

export async function fogRequests(hostCounts: number[]): Promise<FogRequestRow[]> {
  const rows: FogRequestRow[] = [];
  for (const hosts of hostCounts) {
    // Images big enough that every task stays in progress while it is measured.
    const lab = await startWatcherLab(hosts, {
      timeScale: 1,
      images: [{ id: 9, name: "clean", sizeGB: 1_000 }],
    });
    try {
      const later = new Date(Date.now() + 3_600_000);
      const fogHostIds: string[] = [];
      for (let i = 0; i < hosts; i++) {
        fogHostIds.push((await waitingForImaging(lab, `pod${i + 1}`, i + 1, later)).fogHostId);
      }
      const measure = async (design: FogRequestRow["design"], cycle: () => Promise<unknown>) => {
        const before = lab.fog.requests.length;
        for (let n = 0; n < CYCLES; n++) await cycle();
        const made = lab.fog.requests.slice(before);
        rows.push({
          hosts,
          design,
          requestsPerCycle: made.length / CYCLES,
          taskCurrentPerCycle: made.filter((r) => r.route === "task/current").length / CYCLES,
          kilobytesPerCycle: made.reduce((sum, r) => sum + r.bytes, 0) / CYCLES / 1024,
        });
      };
      await measure("watcher", () => watch(lab.rt));
      // One look per imaging execution per poll, as each execution's CheckImaging made it.
      await measure("baseline", () => Promise.all(fogHostIds.map((id) => lab.imager.progress(id))));
    } finally {
      await lab.close();
    }
  }
  return rows;
}
