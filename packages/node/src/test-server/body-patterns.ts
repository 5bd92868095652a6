// Deterministic bodies served by the test server, exported so that tests can verify a
// response byte-exact without the server having to tell them what it sent.

/**
 * /large is made of 64-byte lines, each starting with its own byte offset in hex. A
 * client can check any slice; a dropped, duplicated or reordered chunk shows up at
 * the first wrong line (a constant filler would hide it).
 */
export const LARGE_LINE_BYTES = 64;
const OFFSET_DIGITS = 15;
const FILLER = ' weldr-large-body-pattern-abcdefghijklmnopqrstuv';
/** Bytes per chunk written by /large and /bytes; a multiple of LARGE_LINE_BYTES. */
export const PATTERN_CHUNK_BYTES = 64 * 1024;

const template = (() => {
  const line = Buffer.from('0'.repeat(OFFSET_DIGITS) + FILLER + '\n', 'latin1');
  if (line.length !== LARGE_LINE_BYTES) throw new Error(`pattern line is ${line.length} bytes`);
  const buf = Buffer.allocUnsafe(PATTERN_CHUNK_BYTES);
  for (let i = 0; i < PATTERN_CHUNK_BYTES; i += LARGE_LINE_BYTES) line.copy(buf, i);
  return buf;
})();

/** The bytes [offset, offset + length) of the /large pattern. */
export function largeBodySlice(offset: number, length: number): Buffer {
  const start = offset - (offset % LARGE_LINE_BYTES);
  const lines = Math.ceil((offset + length - start) / LARGE_LINE_BYTES);
  const out = Buffer.allocUnsafe(lines * LARGE_LINE_BYTES);
  for (let i = 0; i < lines; i++) {
    const at = i * LARGE_LINE_BYTES;
    template.copy(out, at, 0, LARGE_LINE_BYTES);
    out.write((start + at).toString(16).padStart(OFFSET_DIGITS, '0'), at, 'latin1');
  }
  return out.subarray(offset - start, offset - start + length);
}

/**
 * Offset of the first byte of `body` that differs from the /large pattern of `size`
 * bytes, or -1 when it matches exactly (a length mismatch counts from the shorter end).
 */
export function firstLargeBodyMismatch(body: Buffer, size: number): number {
  for (let offset = 0; offset < Math.min(body.length, size); offset += PATTERN_CHUNK_BYTES) {
    const n = Math.min(PATTERN_CHUNK_BYTES, size - offset, body.length - offset);
    const expected = largeBodySlice(offset, n);
    const got = body.subarray(offset, offset + n);
    if (!expected.equals(got)) {
      for (let i = 0; i < n; i++) if (expected[i] !== got[i]) return offset + i;
    }
  }
  return body.length === size ? -1 : Math.min(body.length, size);
}

/** /bytes/:n serves this byte repeated: cheap to produce, for benchmarks. */
export const FILL_BYTE = 0x78; // 'x'
export const fillChunk = Buffer.alloc(PATTERN_CHUNK_BYTES, FILL_BYTE);

/** The chunks /chunked writes, one write each (so the response has that many chunks). */
export function chunkedParts(count: number): string[] {
  const parts: string[] = [];
  for (let i = 0; i < count; i++) parts.push(`chunk ${i + 1} of ${count}\n`);
  return parts;
}
