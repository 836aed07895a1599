// Bundles the CNI plugin into one CommonJS file, dist/weft-cni.cjs: a single
// file loads faster than a tree of ESM modules (no per-module resolution) and
// can be copied into a runtime's CNI bin directory on its own.
// The metafile (dist/weft-cni.meta.json) lists every bundled input; the
// integration tests read it to keep the plugin's import graph small.
import { build } from 'esbuild';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outfile = join(root, 'dist', 'weft-cni.cjs');

await mkdir(dirname(outfile), { recursive: true });
const result = await build({
  absWorkingDir: root,
  entryPoints: ['src/bin/weft-cni.ts'],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  banner: { js: '#!/usr/bin/env node' },
  sourcemap: false,
  metafile: true,
  logLevel: 'warning',
});
await writeFile(join(root, 'dist', 'weft-cni.meta.json'), JSON.stringify(result.metafile, null, 2));
await chmod(outfile, 0o755);
// The weft CLI is run directly too (npm link, the README): make it executable.
await chmod(new URL('../dist/src/bin/weft.js', import.meta.url), 0o755);
console.log(`bundled ${outfile} (${Object.keys(result.metafile.inputs).length} inputs)`);
