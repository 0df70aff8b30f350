#include <stdint.h>
/* EXPERIMENT: prefetch instructions Java cannot issue (they retire at once; a load waits in the ROB). */
void pf_touch(const int64_t *addrs, int n) {
  for (int i = 0; i < n; i++) __builtin_prefetch((const void *)addrs[i], 0, 3);
}
void pf_touch2(const int64_t *addrs, int n) {   /* the frame's line and the line before it (DPDK prefetches the buffer's start) */
  for (int i = 0; i < n; i++) { __builtin_prefetch((const void *)addrs[i], 0, 3); __builtin_prefetch((const void *)(addrs[i] - 12), 0, 3); }
}

/* EXPERIMENT: DPDK's vhost split dequeue (virtio_dev_tx_split, in-order front-end, no offloads), done in C inside the
 * JVM: a burst of up to 32, every head and descriptor first (with map_one_desc's prefetch of the buffer's start), then
 * every copy, then every used element, the used index (release) and a seq_cst fence. One guest region. Returns the
 * buffers consumed, 0 if none, -1 on anything the Java path must handle. */
struct vdesc { uint64_t addr; uint32_t len; uint16_t flags, next; };
#include <string.h>
int cburst(uint8_t *avail, struct vdesc *desc, uint8_t *used, int size, int next_avail, int next_used,
           int64_t gbase, int64_t glen, int64_t hbase, int skip, uint8_t *dst, int mode) {
  uint16_t idx = __atomic_load_n((uint16_t *)(avail + 2), __ATOMIC_ACQUIRE);
  int n = (uint16_t)(idx - next_avail);
  if (n > size) return -1;
  if (n == 0) return 0;
  if (n > 32) n = 32;
  uint16_t *ring = (uint16_t *)(avail + 4);
  uint16_t heads[32]; const uint8_t *src[32]; uint32_t lens[32];
  for (int k = 0; k < n; k++) {
    uint16_t h = ring[(next_avail + k) & (size - 1)];
    if (h >= size || (desc[h].flags & 5)) return -1;   /* NEXT or INDIRECT: the Java path */
    uint64_t a = desc[h].addr; uint32_t l = desc[h].len;
    if (l <= (uint32_t)skip || l > 2048 + skip || a < (uint64_t)gbase || a + l > (uint64_t)(gbase + glen)) return -1;
    heads[k] = h;
    src[k] = (const uint8_t *)(hbase + (int64_t)(a - gbase));
    if (mode & 16) __builtin_prefetch(src[k] + skip, 0, 0);
    else if (!(mode & 1)) __builtin_prefetch(src[k]);
    src[k] += skip;
    lens[k] = l - skip;
  }
  if (mode & 2) { uint8_t x = 0; for (int k = 0; k < n; k++) x += *(volatile const uint8_t *)src[k]; dst[0] = x; }
  else if (mode & 4) { for (int k = 0; k < n; k++) { uint64_t x = 0; for (int q = 0; q < 64; q += 8) x += *(volatile const uint64_t *)(src[k] + q); *(uint64_t *)dst = x; } }
  else for (int k = 0; k < n; k++) memcpy(dst, src[k], lens[k]);
  if (mode & 8) for (int k = 0; k < n; k++) __builtin_ia32_clflushopt((void *)src[k]);
  if (mode & 32) for (int k = 0; k < n; k++) __builtin_ia32_clwb((void *)src[k]);
  uint32_t *uring = (uint32_t *)(used + 4);
  for (int k = 0; k < n; k++) { int s = (next_used + k) & (size - 1); uring[2 * s] = heads[k]; uring[2 * s + 1] = 0; }
  __atomic_store_n((uint16_t *)(used + 2), (uint16_t)(next_used + n), __ATOMIC_RELEASE);
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  return n;
}

/* EXPERIMENT: evict every line of each consumed frame from every cache (CLFLUSHOPT), so that the driver's next write to
 * it finds no copy of ours to invalidate. */
void flush_frames(const int64_t *addrs, const int32_t *lens, int n) {
  uintptr_t last = 0;
  for (int k = 0; k < n; k++) {
    uintptr_t a = (uintptr_t)addrs[k] & ~(uintptr_t)63, e = (uintptr_t)addrs[k] + (uint32_t)lens[k];
    for (; a < e; a += 64) { if (a != last) __builtin_ia32_clflushopt((void *)a); last = a; }
  }
}
