import type { CAC } from 'cac';
import { SUPPORTED_VERSIONS } from '../../core/cni/versions.js';
import { type Ctx, OUTPUT_OPT, SOCKET_OPT } from '../context.js';
import { emit } from '../output.js';
import { WEFT_VERSION } from '../../version.js';

export function registerVersion(cli: CAC, ctx: Ctx): void {
  cli.command('version', 'Print weft\'s version and the CNI versions it speaks').option(...OUTPUT_OPT).option(...SOCKET_OPT)
    .action((opts: Record<string, unknown>) => {
      const v = { weft: WEFT_VERSION, node: process.version, cniVersions: SUPPORTED_VERSIONS };
      emit(ctx.io, ctx.format(opts), v, () => `weft ${v.weft} (node ${v.node}; CNI ${v.cniVersions.join(', ')})`);
    });
}
