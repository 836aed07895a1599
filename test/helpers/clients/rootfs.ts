/**
 * A busybox root filesystem for real-client tests: no registry, no image
 * pull. /bin/busybox (Debian's busybox-static) plus one symlink per applet,
 * so containers have /sbin/ip, /bin/ping, /usr/bin/nc, /usr/sbin/httpd,
 * /bin/sleep and a shell. podman uses it with `--rootfs DIR`, ctr with
 * `ctr run --rootfs DIR`.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export const BUSYBOX = '/bin/busybox';

/** True when the static busybox this needs is installed. */
export function haveBusybox(): boolean {
  return existsSync(BUSYBOX);
}

/** Builds the rootfs in `dir` (created) and returns `dir`. Takes a few ms. */
export function buildBusyboxRootfs(dir: string): string {
  for (const d of ['bin', 'sbin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'root', 'run', 'var', 'usr/bin', 'usr/sbin', 'www']) mkdirSync(join(dir, d), { recursive: true });
  copyFileSync(BUSYBOX, join(dir, 'bin/busybox'));
  chmodSync(join(dir, 'bin/busybox'), 0o755);
  const applets = execFileSync(BUSYBOX, ['--list-full'], { encoding: 'utf8' }).split('\n').map((s) => s.trim()).filter((s) => s !== '' && s !== 'bin/busybox');
  for (const a of applets) {
    const target = join(dir, a);
    if (existsSync(target)) continue;
    mkdirSync(dirname(target), { recursive: true });
    symlinkSync('/bin/busybox', target);
  }
  writeFileSync(join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  writeFileSync(join(dir, 'etc/group'), 'root:x:0:\n');
  chmodSync(join(dir, 'tmp'), 0o1777);
  return dir;
}
