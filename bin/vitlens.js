#!/usr/bin/env node
// Entry point of the `vitlens` command: the bundled CLI (built by `npm run build`).
//
// Native libraries write to the process's stderr directly, where no JavaScript can stop them:
// Dawn (inside onnxruntime and dawn.node) prints "Warning: maxDynamic…BuffersPerPipelineLayout
// artificially reduced…" every time it opens an adapter, and the Vulkan loader's complaints come
// with C++ source locations. So the CLI runs in a child whose stderr passes through here, and that
// library chatter is dropped; everything the CLI itself says gets through. `--verbose` (or
// VITLENS_VERBOSE=1) runs it in this process with nothing filtered.
'use strict';
const path = require('node:path');
const fs = require('node:fs');
const { spawn } = require('node:child_process');

const bundle = path.join(__dirname, '..', 'dist', 'cli.js');
if (!fs.existsSync(bundle)) {
  process.stderr.write(
    'vitlens: dist/cli.js is missing: run `npm run build` first (npm ci runs it through "prepare").\n',
  );
  process.exit(1);
}
process.env.XDG_RUNTIME_DIR ??= require('node:os').tmpdir(); // Vulkan's loader warns without it

/** Lines native runtimes print on their own: Dawn's limit adjustments and its source-located warnings. */
const LIBRARY_CHATTER = [
  /^Warning: maxDynamic\w+PerPipelineLayout artificially reduced from \d+ to \d+/,
  /^Warning: Couldn't load Vulkan:/,
  /^\s+at \S+ \(.*third_party\/dawn\/.*\)$/,
];

const args = process.argv.slice(2);
const verbose = args.includes('--verbose') || process.env.VITLENS_VERBOSE === '1';

if (verbose || process.env.VITLENS_CLI_CHILD === '1') {
  require(bundle)
    .main(args.filter((a) => a !== '--verbose'))
    .then((code) => {
      // Runtimes (Dawn, onnxruntime) keep handles open; exit once stdout has drained.
      process.stdout.write('', () => process.exit(code));
    });
} else {
  const child = spawn(process.execPath, [__filename, ...args], {
    stdio: ['inherit', 'inherit', 'pipe'],
    env: { ...process.env, VITLENS_CLI_CHILD: '1' },
  });
  let pending = '';
  const pass = (line) => {
    if (!LIBRARY_CHATTER.some((re) => re.test(line))) process.stderr.write(line + '\n');
  };
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    const lines = (pending + chunk).split('\n');
    pending = lines.pop();
    lines.forEach(pass);
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal));
  child.on('close', (code, signal) => {
    if (pending) pass(pending);
    if (signal) {
      // Die of the same signal, as the shell expects (our forwarding handler must not catch it).
      process.removeAllListeners(signal);
      process.kill(process.pid, signal);
    } else process.exit(code ?? 1);
  });
}
