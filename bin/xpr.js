#!/usr/bin/env node
// The `xpr` command: everything is in the library; this only runs it and sets the exit code.
import { main } from '../dist/src/cli/main.js';

// `xpr ls | head` closes the pipe early: that is the reader's choice, not an error to report.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

process.exitCode = await main(process.argv.slice(2));
