import { ConfigError } from '../config/config-error.js';

/**
 * `--endpoints`: a comma-separated list of admin API base URLs. `host:port` without a
 * scheme means http://host:port (as etcdctl and curl read it). Only the origin is kept:
 * the admin API lives at the root of its listener.
 */
export function parseEndpoints(raw: string, where = '--endpoints'): string[] {
  const parts = raw.split(',').map((p) => p.trim());
  if (parts.length === 0 || parts.some((p) => p === '')) throw new ConfigError(`${where} needs one or more URLs separated by commas, e.g. http://127.0.0.1:8687,http://127.0.0.1:8697`);
  const out: string[] = [];
  for (const part of parts) {
    const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(part) ? part : `http://${part}`;
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw new ConfigError(`${where}: "${part}" is not a URL (expected e.g. http://127.0.0.1:8687)`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError(`${where}: "${part}" must be an http:// or https:// URL`);
    if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
      throw new ConfigError(`${where}: "${part}" must be just scheme://host:port (the admin API is at the root; pass the token with --token)`);
    }
    if (!out.includes(url.origin)) out.push(url.origin);
  }
  return out;
}
