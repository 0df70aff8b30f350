package dev.jvbus.connector.shm.server;

import dev.jvbus.core.memory.MemoryRegion;
import dev.jvbus.core.sys.Memfd;

/**
 * One DEVSHM region as the session holds it: the window {@code [offset, offset + size)} of the
 * client's memfd, mapped here (the session owns the mapping and its fd and closes them when the
 * device resets or the client goes), which the device sees at {@code guestAddress}. Only the window
 * is mapped ({@link Memfd#adopt}, with its kind, access-mode and seal checks), so a small window at
 * a large offset of a sparse file costs the bus no more address space than its size.
 */
record SharedRegion(long guestAddress, long size, long offset, Memfd mapping) implements AutoCloseable {

    MemoryRegion memoryRegion() {
        return new MemoryRegion(guestAddress, size, mapping.segment(), mapping.lifetime());
    }

    long end() {
        return guestAddress + size;
    }

    /** True if the guest ranges share a byte (unsigned; an end of 0 means 2^64). */
    boolean overlaps(long otherAddress, long otherSize) {
        long otherEnd = otherAddress + otherSize;
        boolean otherBeforeUs = otherEnd != 0 && Long.compareUnsigned(otherEnd, guestAddress) <= 0;
        boolean usBeforeOther = end() != 0 && Long.compareUnsigned(end(), otherAddress) <= 0;
        return !otherBeforeUs && !usBeforeOther;
    }

    @Override
    public void close() {
        mapping.close();
    }
}
