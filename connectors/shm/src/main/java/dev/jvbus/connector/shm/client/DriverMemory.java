package dev.jvbus.connector.shm.client;

import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.memory.MemoryRegion;
import dev.jvbus.core.sys.Memfd;
import java.lang.foreign.MemorySegment;

/**
 * Memory a client owns and shares with one device: a memfd (sealed against shrinking) that the bus
 * maps at {@code guestBase}. Rings and buffers are carved out of it with {@link #allocate}; an
 * address handed to the device is {@code guestBase + offset}.
 *
 * <p>Closing unmaps the client's view and closes its fd; the bus keeps its own mapping until the
 * device is reset, so close this after the device.
 */
public final class DriverMemory implements AutoCloseable {
    private final Memfd memfd;
    private final long guestBase;
    private final GuestMemory view;
    private long next;

    DriverMemory(Memfd memfd, long guestBase) {
        this.memfd = memfd;
        this.guestBase = guestBase;
        this.view = GuestMemory.of(new MemoryRegion(guestBase, memfd.size(), memfd.segment()));
    }

    public static DriverMemory create(String name, long size, long guestBase) {
        return new DriverMemory(Memfd.create(name, size), guestBase);
    }

    public Memfd memfd() { return memfd; }

    public long guestBase() { return guestBase; }

    public long size() { return memfd.size(); }

    /**
     * Reserves {@code size} bytes aligned to {@code align} (a power of two) and returns their guest address.
     *
     * @throws IllegalStateException if the memory is full
     */
    public synchronized long allocate(long size, long align) {
        if (Long.bitCount(align) != 1) throw new IllegalArgumentException("alignment must be a power of two: " + align);
        long start = (next + align - 1) & -align;
        if (size < 0 || start + size > memfd.size())
            throw new IllegalStateException("driver memory full: " + size + " bytes at " + start + " of " + memfd.size());
        next = start + size;
        return guestBase + start;
    }

    /** The client's view as a memory table, with the device's addresses (for the ring's driver side). */
    public GuestMemory guestMemory() {
        return view;
    }

    /** The client's view of {@code [guestAddress, +length)}. */
    public MemorySegment segment(long guestAddress, long length) {
        return memfd.segment().asSlice(guestAddress - guestBase, length);
    }

    @Override
    public void close() {
        memfd.close();
    }
}
