#!/usr/bin/env node
// The `weldr` command. Runs the compiled CLI; `npm ci` builds it (root `prepare` script).
import { main } from '../dist/src/main.js';

main(process.argv.slice(2)).then(
  (code) => {
    if (typeof code === 'number') process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`weldr: ${err && err.stack ? err.stack : err}\n`);
    process.exitCode = 1;
  },
);
