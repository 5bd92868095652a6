// A child process's stdout read as log lines: the text comes in chunks that split lines
// anywhere, and only the lines that parse as JSON objects are log records.

/**
 * A handler for stdout chunks (already decoded) that calls `onObject` with each complete
 * line that parses as a JSON object, in order. Other lines are passed over; a last line
 * without its newline waits for the next chunk.
 */
export function jsonObjectLines(onObject: (line: Record<string, unknown>) => void): (chunk: string) => void {
  let partial = '';
  return (chunk) => {
    partial += chunk;
    let nl: number;
    while ((nl = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      try {
        const parsed: unknown = JSON.parse(line);
        if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) onObject(parsed as Record<string, unknown>);
      } catch {
        // not a JSON line
      }
    }
  };
}
