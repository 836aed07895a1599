/**
 * Empty cgroup directories container engines leave behind (podman's
 * `libpod_parent/conmon`, containerd's per-namespace `default`). A test
 * snapshots which of them exist before it starts and removes, afterwards,
 * only those that it caused to appear — and only when empty (rmdir refuses
 * a cgroup with processes or children).
 */
import { existsSync, readdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = '/sys/fs/cgroup';

/** Every `<hierarchy>/<rel>` path under /sys/fs/cgroup (v1 controllers, the v2 `unified` mount, or the v2 root itself). */
function candidates(rel: string): string[] {
  const out = [join(ROOT, rel)];
  try {
    for (const h of readdirSync(ROOT)) out.push(join(ROOT, h, rel));
  } catch {
    /* no cgroupfs */
  }
  return out;
}

export class CgroupLeftovers {
  private readonly before = new Set<string>();

  /** `rels` deepest first, e.g. ['libpod_parent/conmon', 'libpod_parent']. */
  constructor(private readonly rels: readonly string[]) {
    for (const r of rels) for (const p of candidates(r)) if (existsSync(p)) this.before.add(p);
  }

  /** Removes the empty ones that did not exist before; never throws. */
  removeNew(): void {
    for (const r of this.rels) {
      for (const p of candidates(r)) {
        if (this.before.has(p) || !existsSync(p)) continue;
        try {
          rmdirSync(p);
        } catch {
          /* busy or not empty: not ours to force */
        }
      }
    }
  }
}
