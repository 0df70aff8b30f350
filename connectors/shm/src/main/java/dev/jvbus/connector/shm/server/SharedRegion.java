package dev.jvbus.connector.shm.server;

import dev.jvbus.core.memory.MemoryRegion;
import dev.jvbus.core.sys.Memfd;

/**
 * One DEVSHM region as the session holds it: the client's fd mapped here (the session owns the
 * mapping and closes it when the device resets or the client goes), and the window
 * {@code [offset, offset + size)} of that file that the device sees at {@code guestAddress}.
 *
 * <p>The whole prefix {@code [0, offset + size)} is mapped (that is what {@link Memfd#adopt} does,
 * with its kind, size and seal checks); only the window is handed to the device.
 */
record SharedRegion(long guestAddress, long size, long offset, Memfd mapping) implements AutoCloseable {

    MemoryRegion memoryRegion() {
        return new MemoryRegion(guestAddress, size, mapping.segment().asSlice(offset, size));
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
