/**
 * Installing never downloads anything and never runs an unreviewed install script. onnxruntime-node's
 * installer fetches the CUDA provider from NuGet on linux-x64 (hundreds of MB online; a failed
 * `npm ci` offline): package.json's `allowScripts` (npm ≥ 11) denies it, and every other dependency
 * with an install script is listed there on purpose. `.npmrc` holds only keys npm knows, so no
 * command prints npm's "Unknown project config" warning.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ROOT } from './helpers/fixtures';

const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  allowScripts?: Record<string, boolean>;
};

/** Installed packages (node_modules, one level of scopes) whose manifest has an install-time script. */
function packagesWithInstallScripts(): string[] {
  const root = path.join(ROOT, 'node_modules');
  const names = fs
    .readdirSync(root)
    .flatMap((n) =>
      n.startsWith('@') ? fs.readdirSync(path.join(root, n)).map((m) => `${n}/${m}`) : n.startsWith('.') ? [] : [n],
    );
  return names.filter((name) => {
    const file = path.join(root, name, 'package.json');
    if (!fs.existsSync(file)) return false;
    const scripts = (JSON.parse(fs.readFileSync(file, 'utf8')) as { scripts?: Record<string, string> }).scripts ?? {};
    return ['preinstall', 'install', 'postinstall'].some((s) => s in scripts);
  });
}

test('onnxruntime-node’s downloading installer is denied, and every install script is reviewed', () => {
  assert.equal(pkg.allowScripts?.['onnxruntime-node'], false);
  const uncovered = packagesWithInstallScripts().filter((name) => !(name in (pkg.allowScripts ?? {})));
  assert.deepEqual(uncovered, [], 'packages whose install scripts npm would run unreviewed');
});

test('the installed onnxruntime-node carries no CUDA provider (nothing was fetched)', () => {
  const bin = path.join(ROOT, 'node_modules', 'onnxruntime-node', 'bin');
  const files = fs.readdirSync(bin, { recursive: true }).map(String);
  assert.ok(
    files.some((f) => f.endsWith('onnxruntime_binding.node')),
    'the bundled binding is there',
  );
  assert.deepEqual(
    files.filter((f) => /providers_(cuda|tensorrt)/.test(f)),
    [],
  );
});

test('npm reads .npmrc without an "Unknown project config" warning', () => {
  const r = spawnSync('npm', ['config', 'get', 'fund'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'false', 'the .npmrc is the one read');
  assert.doesNotMatch(r.stderr, /Unknown (project|user|global) config/);
});
