import type { CAC } from 'cac';
import type { Ctx } from '../context.js';

export function registerDemo(cli: CAC, ctx: Ctx): void {
  cli.command('demo', 'Build a throw-away world of network namespaces and show weft at work (--down removes it)')
    .option('--down', 'remove the demo world')
    .action(async (opts: Record<string, unknown>) => {
      const { runDemo, downDemo } = await import('../../demo/demo.js');
      if (opts.down) await downDemo(ctx.io);
      else await runDemo(ctx.io);
    });
}
