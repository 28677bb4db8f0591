#!/usr/bin/env node
// The `xpr` command: everything is in the library; this only runs it and sets the exit code.
import { main } from '../dist/src/cli/main.js';

process.exitCode = await main(process.argv.slice(2));
