/**
 * Brings store and kernel back into agreement: at start (after a crash or a
 * reboot) and periodically (someone deleted a bridge, a container vanished
 * without DEL). Order matters:
 *  1. settle ADDs left `creating` (in flight when the daemon died, or whose
 *     `ready` commit failed): complete the ones the kernel has in full, roll
 *     back the others;
 *  2. release attachments whose container is gone (the netns no longer exists);
 *  3. remove weft veths no attachment owns;
 *  4. recreate missing bridges and remove weft bridges nothing uses;
 *  5. rewrite the NAT table.
 */
import type { Attachments } from './attachments.js';
import type { HostNetwork } from './host-network.js';
import type { Logger } from './logger.js';
import { toWeftError } from '../core/errors.js';

export interface ReconcileReport {
  readonly at: string;
  /** Interrupted ADDs whose kernel state was complete, recorded as ready (their answer may have gone out). */
  readonly completed: number;
  readonly rolledBack: number;
  readonly collected: number;
  readonly bridgesEnsured: number;
  readonly bridgesRemoved: number;
  /** Host ends of veths with weft's port alias that no attachment owned. */
  readonly portsRemoved: number;
  readonly errors: readonly string[];
}

export function summarize(r: ReconcileReport): string {
  const parts = [`${r.bridgesEnsured} bridge(s) in place`];
  if (r.completed) parts.push(`${r.completed} interrupted ADD(s) completed`);
  if (r.rolledBack) parts.push(`${r.rolledBack} interrupted ADD(s) rolled back`);
  if (r.collected) parts.push(`${r.collected} attachment(s) of vanished containers released`);
  if (r.portsRemoved) parts.push(`${r.portsRemoved} veth(s) no attachment owned removed`);
  if (r.bridgesRemoved) parts.push(`${r.bridgesRemoved} unused bridge(s) removed`);
  if (r.errors.length) parts.push(`${r.errors.length} error(s): ${r.errors.join('; ')}`);
  return parts.join(', ');
}

export class Reconciler {
  private running: Promise<ReconcileReport> | undefined;

  constructor(private readonly attachments: Attachments, private readonly host: HostNetwork, private readonly log: Logger, private readonly now: () => Date) {}

  /** Resolves when no pass is running (the daemon waits for it before closing the store). */
  async idle(): Promise<void> {
    await this.running?.catch(() => undefined);
  }

  /** Runs one pass; concurrent callers share the pass in progress. */
  run(): Promise<ReconcileReport> {
    this.running ??= this.pass().finally(() => { this.running = undefined; });
    return this.running;
  }

  private async pass(): Promise<ReconcileReport> {
    const errors: string[] = [];
    // At start-up nothing else runs yet; later an ADD in flight holds its lock and is waited for.
    const settled = await this.attachments.settleInterrupted();
    const completed = settled.completed.length;
    const rolledBack = settled.rolledBack.length;
    errors.push(...settled.errors);
    const gone = await this.attachments.gc(undefined, (a) => a.state === 'creating' || a.mode === 'ipam' && !a.netns || this.attachments.containerAlive(a));
    errors.push(...gone.errors);
    let portsRemoved = 0;
    try {
      portsRemoved = (await this.host.removeOrphanPorts((name) => this.attachments.preparingPort(name))).length;
    } catch (e) {
      errors.push(`veths: ${toWeftError(e).message}`);
    }
    let bridgesEnsured = 0;
    let bridgesRemoved = 0;
    try {
      const b = await this.host.reconcileBridges();
      bridgesEnsured = b.ensured.length;
      bridgesRemoved = b.removed.length;
    } catch (e) {
      errors.push(`bridges: ${toWeftError(e).message}`);
    }
    try {
      // Forced: someone may have flushed the ruleset (`systemctl restart nftables`) since the last apply.
      await this.host.syncNat({ force: true });
    } catch (e) {
      errors.push(`nftables: ${toWeftError(e).message}`);
    }
    const report: ReconcileReport = { at: this.now().toISOString(), completed, rolledBack, collected: gone.released.length, bridgesEnsured, bridgesRemoved, portsRemoved, errors };
    if (completed || rolledBack || gone.released.length || bridgesRemoved || portsRemoved || errors.length) this.log.info('reconciled', { ...report });
    return report;
  }
}
