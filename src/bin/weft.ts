#!/usr/bin/env -S node --max-semi-space-size=1 --optimize-for-size
// A 1 MiB young generation keeps the long-running router near its live data (see ROUTER_NODE_FLAGS).
import { runCli } from '../cli/main.js';

process.exitCode = await runCli(process.argv);
