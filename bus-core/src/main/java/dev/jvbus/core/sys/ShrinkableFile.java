package dev.jvbus.core.sys;

/**
 * A peer's file that a mapping shows up to byte {@code end} and that the peer can still shrink: not sealed
 * with {@code F_SEAL_SHRINK} (QEMU's and DPDK's memory files as vhost-user hands them over). Once the peer
 * truncates it below {@code end}, our next access to a page past the new end raises SIGBUS
 * ({@code dev.jvbus.core.memory.MappedMemoryFault}). This is the evidence that such a fault was the peer's:
 * the file is now shorter than what we mapped.
 *
 * @param fd  the mapping's own fd (open while the mapping is: its lifetime closes both, once)
 * @param end the offset in the file where the mapped window ends
 */
public record ShrinkableFile(int fd, long end) {
    /** True if the file is now shorter than the mapped window: pages we map are gone. One statx; for the fault path only. */
    public boolean shrunk() {
        try {
            return FdStat.of(fd).size() < end;
        } catch (RuntimeException e) {
            return false;   // no evidence
        }
    }
}
