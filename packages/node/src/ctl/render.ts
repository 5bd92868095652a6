// Output for people (aligned tables, one line per fact) and for scripts (JSON).

/** Placeholder for a value the cluster does not report (or a member that could not be asked). */
export const UNKNOWN = 'unknown';

/** Left-aligned columns separated by two spaces; the header in capitals. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(headers.map((h) => h.toUpperCase())), ...rows.map(line)].join('\n') + '\n';
}

export function json(value: unknown): string {
  return JSON.stringify(value, null, 2) + '\n';
}

/** A value for a table cell: unknown for null/undefined. */
export function cell(value: string | number | boolean | null | undefined): string {
  if (value === null || value === undefined) return UNKNOWN;
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  return String(value);
}

/** "3s ago", "120ms ago" for an age in milliseconds. */
export function age(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms ago`;
  if (ms < 120_000) return `${Math.round(ms / 1000)}s ago`;
  return `${Math.round(ms / 60_000)}m ago`;
}
