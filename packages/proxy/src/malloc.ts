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

let raised = false;

export function raiseMallocThresholds(): void {
  if (raised) return;
  raised = true;
  // Dropped at once: the next garbage collection frees it (munmap), which is the point.
  void Buffer.alloc(MALLOC_WARM_BYTES);
}
