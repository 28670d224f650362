#!/usr/bin/env node
// Entry point of the `vitlens` command: the bundled CLI (built by `npm run build`).
'use strict';
const path = require('node:path');
const fs = require('node:fs');
const bundle = path.join(__dirname, '..', 'dist', 'cli.js');
if (!fs.existsSync(bundle)) {
  process.stderr.write(
    'vitlens: dist/cli.js is missing: run `npm run build` first (npm ci runs it through "prepare").\n',
  );
  process.exit(1);
}
process.env.XDG_RUNTIME_DIR ??= require('node:os').tmpdir(); // Vulkan's loader warns without it
require(bundle)
  .main(process.argv.slice(2))
  .then((code) => {
    // Runtimes (Dawn, onnxruntime) keep handles open; exit once stdout has drained.
    process.stdout.write('', () => process.exit(code));
  });
