/**
 * `weft` command line. Groups (subnet, pool, ip) are their own cac programs
 * so each has its own --help; everything heavy (the daemon, lmdb) is loaded
 * only by the command that needs it.
 */
import { cac, type CAC } from 'cac';
import { ApiError, RouterUnreachableError } from '../client/api-client.js';
import { WEFT_VERSION } from '../version.js';
import { type Ctx, makeCtx } from './context.js';
import { type Io, parseFormat, processIo, UsageError } from './output.js';
import { registerInstallCni } from './commands/install-cni.js';
import { registerIp } from './commands/ip.js';
import { registerLaunch } from './commands/launch.js';
import { registerPool } from './commands/pool.js';
import { registerStatus } from './commands/status.js';
import { registerSubnet } from './commands/subnet.js';
import { registerVersion } from './commands/version.js';
import { registerDemo } from './commands/demo.js';
import { registerPeers } from './commands/peers.js';

const GROUPS: Record<string, { about: string; register: (cli: CAC, ctx: Ctx) => void }> = {
  subnet: { about: 'Manage subnets: create, list, show, update, delete', register: registerSubnet },
  pool: { about: 'Manage pools of addresses inside a subnet: create, list, delete', register: registerPool },
  ip: { about: 'Reserve, release and list addresses', register: registerIp },
};

function topLevel(ctx: Ctx): CAC {
  const cli = cac('weft');
  registerLaunch(cli, ctx);
  registerStatus(cli, ctx);
  registerPeers(cli, ctx);
  registerInstallCni(cli, ctx);
  registerVersion(cli, ctx);
  registerDemo(cli, ctx);
  for (const [name, g] of Object.entries(GROUPS)) cli.command(`${name} <command>`, `${g.about} (weft ${name} --help)`).action(() => undefined);
  cli.help();
  cli.version(WEFT_VERSION);
  return cli;
}

/** Runs the CLI; returns the exit code (0 ok, 1 failed, 2 usage). */
export async function runCli(argv: readonly string[], io: Io = processIo, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const ctx = makeCtx(io, env);
  const args = argv.slice(2);
  const group = args[0] !== undefined ? GROUPS[args[0]] : undefined;
  let cli: CAC;
  let parseArgv: string[];
  if (group) {
    cli = cac(`weft ${args[0]}`);
    group.register(cli, ctx);
    cli.help();
    parseArgv = [argv[0] ?? 'node', `weft ${args[0]}`, ...args.slice(1)];
  } else {
    cli = topLevel(ctx);
    parseArgv = [...argv];
  }
  try {
    const parsed = cli.parse(parseArgv, { run: false });
    if (parsed.options.help || parsed.options.version) return 0;
    if (!cli.matchedCommand) {
      if (cli.args.length > 0) throw new UsageError(`unknown command "${cli.args[0]}"`);
      cli.outputHelp();
      return group ? 2 : 0;
    }
    // A bad -o is a usage error whether or not the router answers: check it before the command calls the router.
    if (cli.matchedCommand.options.some((o) => o.name === 'output')) parseFormat(parsed.options['output']);
    await cli.runMatchedCommand();
    return 0;
  } catch (e) {
    if (e instanceof ApiError) {
      io.err(`Error: ${e.message}${e.hint ? `\nHint: ${e.hint}` : ''}`);
      return 1;
    }
    if (e instanceof RouterUnreachableError) {
      io.err(`Error: ${e.message}\nHint: start the router with \`weft launch\`, or point --socket (or WEFT_SOCKET) at it`);
      return 1;
    }
    const name = (e as Error).name;
    if (e instanceof UsageError || name === 'CACError' || name === 'UsageError') {
      io.err(`Error: ${(e as Error).message}\nRun \`${group ? `weft ${args[0]}` : 'weft'} --help\` for usage.`);
      return 2;
    }
    const we = e as { message?: string; hint?: string };
    io.err(`Error: ${we.message ?? String(e)}${we.hint ? `\nHint: ${we.hint}` : ''}`);
    return 1;
  }
}
