import { setFlagsFromString } from 'node:v8';

/**
 * Response bodies reach the proxy as 64 KiB buffers that node allocates with malloc, one
 * per socket read, and frees when the garbage collector reclaims them — in bulk, tens of
 * MiB at a time. glibc then finds that much free memory at the top of its heap and, above
 * its trim threshold (128 KiB by default), gives it back to the kernel (brk); the next
 * reads grow the heap again, and every page of it is faulted in and zeroed anew. Measured
 * on 1 MiB responses: ~150–250 minor page faults per proxied MiB and 2–3× the CPU time
 * of the same build without them (how much depends on where other allocations happen
 * to sit in the heap, which is why it came and went between builds).
 *
 * glibc has no threshold setting reachable from JavaScript (mallopt, or the
 * MALLOC_TRIM_THRESHOLD_ environment variable read at process start), but it adjusts
 * its thresholds itself: freeing a chunk it had mmapped raises the mmap threshold to that
 * chunk's size and the trim threshold to twice that (glibc malloc.c, "dynamic mmap
 * threshold", up to 32 MiB). One zero-filled 30 MiB buffer, allocated and dropped here,
 * is such a chunk once collected (calloc maps it untouched: it costs no resident memory).
 * Afterwards up to 60 MiB of freed heap stays mapped for reuse instead of being returned
 * and faulted in again. Other allocators (musl) ignore it; an operator's own
 * MALLOC_TRIM_THRESHOLD_ / MALLOC_MMAP_THRESHOLD_ turn the adjustment off in glibc and
 * win.
 */
export const MALLOC_WARM_BYTES = 30 * 1024 * 1024;

/**
 * The same body buffers seen from V8: each is an ArrayBuffer whose memory V8 counts as
 * external, and frees when a scavenge finds it dead — by default on a background thread
 * (concurrent ArrayBuffer sweeping). On a busy core that thread runs late, the memory it
 * has not freed yet still counts, and at several hundred MiB/s of bodies the count
 * crosses V8's external-memory limit again and again: each crossing starts a full
 * mark-compact of the whole heap. Measured on 1 MiB responses through one pinned process
 * (2026-12-07, three alternating pairs): 37–83 mark-compacts in 5 s and 646–708 req/s by
 * default; 1 with the sweeping done on the main thread, right after the scavenge, and
 * 882–908 req/s (1.11–1.14 ms of CPU per MiB instead of 1.42–1.55).
 *
 * The flag is read each time V8 schedules a sweep, so setting it at start takes effect.
 * An operator's own `--concurrent-array-buffer-sweeping` (NODE_OPTIONS, or node's
 * command line) is respected: it is left alone when given.
 */
export const GC_FLAG = '--no-concurrent-array-buffer-sweeping';

let raised = false;

export function raiseMallocThresholds(): void {
  if (raised) return;
  raised = true;
  const given = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].some((a) => a.includes('concurrent-array-buffer-sweeping'));
  if (!given) setFlagsFromString(GC_FLAG);
  // Dropped at once: the next garbage collection frees it (munmap), which is the point.
  void Buffer.alloc(MALLOC_WARM_BYTES);
}
