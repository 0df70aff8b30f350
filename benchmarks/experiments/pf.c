#include <stdint.h>
/* EXPERIMENT: prefetch instructions Java cannot issue (they retire at once; a load waits in the ROB). */
void pf_touch(const int64_t *addrs, int n) {
  for (int i = 0; i < n; i++) __builtin_prefetch((const void *)addrs[i], 0, 3);
}
void pf_touch2(const int64_t *addrs, int n) {   /* the frame's line and the line before it (DPDK prefetches the buffer's start) */
  for (int i = 0; i < n; i++) { __builtin_prefetch((const void *)addrs[i], 0, 3); __builtin_prefetch((const void *)(addrs[i] - 12), 0, 3); }
}
