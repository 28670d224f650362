/**
 * sharp's per-platform packages (@img/sharp-<platform>, @img/sharp-libvips-<platform>) for a VSIX.
 * `npm ci` installs only this machine's, so a VSIX for another platform gets them from the npm
 * registry at packaging time, at exactly the version and integrity package-lock.json records:
 * `npm pack <name>@<version>` into .cache/platform-packages/ (git-ignored; reused while its sha512
 * still matches the lock, so a second run needs no network), the tarball's sha512 checked against
 * the lock, then unpacked into the staged node_modules. Nothing here runs when the extension does.
 */
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..');
export const CACHE = path.join(ROOT, '.cache', 'platform-packages');

export interface LockedPackage {
  name: string;
  version: string;
  /** The lock's sha512 SRI string, `sha512-<base64>`. */
  integrity: string;
}

/** The lock's record of `name` at the top of node_modules (every @img optional package is listed there). */
export function lockedPackage(name: string, lockFile = path.join(ROOT, 'package-lock.json')): LockedPackage {
  const lock = JSON.parse(fs.readFileSync(lockFile, 'utf8')) as {
    packages?: Record<string, { version?: string; integrity?: string }>;
  };
  const entry = lock.packages?.[`node_modules/${name}`];
  // An SRI field may hold several hashes separated by spaces; sha512 is the one npm writes.
  const sha512 = entry?.integrity?.split(/\s+/).find((h) => h.startsWith('sha512-'));
  if (!entry?.version || !sha512)
    throw new Error(`package-lock.json has no version and sha512 integrity for ${name}: run npm install once`);
  return { name, version: entry.version, integrity: sha512 };
}

function sha512(file: string): string {
  return `sha512-${crypto.createHash('sha512').update(fs.readFileSync(file)).digest('base64')}`;
}

/** `@img/sharp-win32-x64` at 0.35.5 → img-sharp-win32-x64-0.35.5.tgz, the name `npm pack` writes. */
function tarballName(p: LockedPackage): string {
  return `${p.name.replace(/^@/, '').replace('/', '-')}-${p.version}.tgz`;
}

/** The verified tarball of `p` in the cache, fetched with `npm pack` when absent or not matching. */
function tarball(p: LockedPackage, log: (s: string) => void): string {
  const file = path.join(CACHE, tarballName(p));
  if (fs.existsSync(file)) {
    if (sha512(file) === p.integrity) return file;
    log(`${path.relative(ROOT, file)} does not match the lock's integrity: fetching it again`);
    fs.rmSync(file);
  }
  fs.mkdirSync(CACHE, { recursive: true });
  const t0 = Date.now();
  const r = spawnSync(
    'npm',
    ['pack', `${p.name}@${p.version}`, '--pack-destination', CACHE, '--json', '--ignore-scripts', '--loglevel=error'],
    { cwd: CACHE, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 300_000 },
  );
  if (r.status !== 0)
    throw new Error(`npm pack ${p.name}@${p.version} failed (${r.status ?? r.signal}): ${(r.stderr || '').trim()}`);
  const packed = (JSON.parse(r.stdout) as { filename: string }[])[0];
  const got = packed ? path.join(CACHE, packed.filename) : file;
  if (got !== file) fs.renameSync(got, file);
  const actual = sha512(file);
  if (actual !== p.integrity) {
    fs.rmSync(file);
    throw new Error(
      `${p.name}@${p.version} from the registry has ${actual}, but package-lock.json records ${p.integrity}`,
    );
  }
  log(
    `fetched ${p.name}@${p.version} (${(fs.statSync(file).size / 1024 / 1024).toFixed(1)} MB, ${Date.now() - t0} ms)`,
  );
  return file;
}

/**
 * Places the package `name` at `into` (a staged node_modules/<name>): hard links to the installed
 * copy when node_modules holds the locked version (npm ci verified it), else the registry
 * tarball, verified against the lock and unpacked. Returns where it came from, for the log.
 */
export function placePlatformPackage(
  name: string,
  into: string,
  link: (from: string, to: string) => void,
  log: (s: string) => void,
): 'installed' | 'registry' {
  const p = lockedPackage(name);
  const installed = path.join(ROOT, 'node_modules', name);
  const manifest = path.join(installed, 'package.json');
  if (
    fs.existsSync(manifest) &&
    (JSON.parse(fs.readFileSync(manifest, 'utf8')) as { version?: string }).version === p.version
  ) {
    link(installed, into);
    return 'installed';
  }
  const file = tarball(p, log);
  fs.mkdirSync(into, { recursive: true });
  // npm tarballs hold one top folder, `package/`.
  const r = spawnSync('tar', ['-xzf', file, '-C', into, '--strip-components=1'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`unpacking ${file} failed: ${r.stderr}`);
  const got = JSON.parse(fs.readFileSync(path.join(into, 'package.json'), 'utf8')) as {
    name?: string;
    version?: string;
  };
  if (got.name !== p.name || got.version !== p.version)
    throw new Error(`${file} holds ${got.name}@${got.version}, not ${p.name}@${p.version}`);
  return 'registry';
}
