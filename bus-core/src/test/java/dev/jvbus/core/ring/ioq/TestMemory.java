package dev.jvbus.core.ring.ioq;

import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.memory.MemoryRegion;
import dev.jvbus.core.sys.Memfd;
import java.lang.foreign.MemorySegment;

/** One memfd as guest memory at {@link #BASE}, with room for two rings and their buffers. */
final class TestMemory implements AutoCloseable {
    static final long BASE = 0x4000_0000L;
    static final long SIZE = 1 << 20;
    static final long RING_A = BASE + 0x1000, RING_B = BASE + 0x20000;
    static final long BUFS_A = BASE + 0x40000, BUFS_B = BASE + 0x80000;

    final Memfd memfd;
    final GuestMemory memory;

    TestMemory() {
        memfd = Memfd.create("ioq-test", SIZE);
        memory = GuestMemory.of(new MemoryRegion(BASE, SIZE, memfd.segment()));
    }

    /** The bytes at a guest address (for test setup and for playing a misbehaving peer). */
    MemorySegment at(long guest, long len) {
        return memfd.segment().asSlice(guest - BASE, len);
    }

    @Override
    public void close() {
        memfd.close();
    }
}
