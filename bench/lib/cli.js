// The plumbing bench/run.js and bench/tls.js share: messages and exits under the
// script's name, checking options, finding and installing the tools they drive, the
// median of the rounds, and rewriting the script's section of docs/benchmarks.md.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

function have(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

/** `cmd` as found on the PATH, else under /usr/sbin (nginx and haproxy are there, off a user's PATH). */
export const bin = (cmd) => (have(cmd) ? cmd : `/usr/sbin/${cmd}`);

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * The helpers that speak for a script, each message under its `name` (`bench`,
 * `bench:tls`): `fail` prints and exits 2, `log` prints progress to stderr.
 */
export function scriptHelpers(name) {
  function fail(msg) {
    process.stderr.write(`${name}: ${msg}\n`);
    process.exit(2);
  }
  function log(msg) {
    process.stderr.write(`[${name}] ${msg}\n`);
  }
  function positiveInt(option, v) {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) fail(`--${option} must be a positive integer, got ${JSON.stringify(v)}`);
    return n;
  }
  function list(option, v, allowed) {
    const items = v.split(',').map((s) => s.trim()).filter(Boolean);
    for (const i of items) if (!allowed.includes(i)) fail(`--${option}: unknown ${JSON.stringify(i)} (allowed: ${allowed.join(', ')})`);
    return items;
  }
  /** Installs from Debian packages the commands of `need` ({ command: package }) that are missing. */
  function ensureTools(need) {
    const missing = Object.entries(need).filter(([cmd]) => !have(cmd) && !existsSync(`/usr/sbin/${cmd}`));
    if (missing.length === 0) return;
    const pkgs = missing.map(([, p]) => p);
    log(`installing ${pkgs.join(' ')} from Debian packages`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const r1 = spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
    const r2 = r1.status === 0 ? spawnSync('apt-get', ['install', '-y', '-qq', ...pkgs], { stdio: 'inherit', env }) : r1;
    if (r2.status !== 0) fail(`could not install ${pkgs.join(' ')}; install them and re-run`);
  }
  /**
   * Replaces what stands between `begin` and `end` in `file` with `table`. A missing file
   * is an error unless `create` is set: then it is made with just the two markers.
   */
  function writeDoc(file, begin, end, table, { create = false } = {}) {
    const text = create && !existsSync(file) ? `# Benchmarks\n\n${begin}\n${end}\n` : readFileSync(file, 'utf8');
    const i = text.indexOf(begin);
    const j = text.indexOf(end);
    if (i < 0 || j < i) fail(`${file} has no ${begin} … ${end} section to replace`);
    writeFileSync(file, `${text.slice(0, i + begin.length)}\n${table}\n${text.slice(j)}`);
    log(`wrote ${file}`);
  }
  return { fail, log, positiveInt, list, ensureTools, writeDoc };
}
