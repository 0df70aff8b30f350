package dev.jvbus.core.ring.virtio;

/**
 * A driver-side scatter-gather list to offer as one buffer chain: device-readable segments first,
 * then device-writable ones, each a guest address and a length. Reusable ({@link #clear()}), so a
 * driver allocates nothing per buffer.
 */
public final class BufferList {
    final long[] address;
    final int[] length;
    int count;
    int readableCount;

    public BufferList(int capacity) {
        if (capacity <= 0 || capacity > SplitRingLayout.MAX_SIZE)
            throw new IllegalArgumentException("capacity must be in 1.." + SplitRingLayout.MAX_SIZE + ": " + capacity);
        address = new long[capacity];
        length = new int[capacity];
    }

    public BufferList clear() {
        count = 0;
        readableCount = 0;
        return this;
    }

    /** Appends a segment the device may read. Must come before any writable segment. */
    public BufferList readable(long addr, int len) {
        if (readableCount != count) throw new IllegalStateException("readable segment after a writable one");
        append(addr, len);
        readableCount++;
        return this;
    }

    /** Appends a segment the device may write. */
    public BufferList writable(long addr, int len) {
        append(addr, len);
        return this;
    }

    private void append(long addr, int len) {
        if (count == address.length) throw new IllegalStateException("buffer list full (" + count + ")");
        address[count] = addr;
        length[count] = len;
        count++;
    }

    public int count() { return count; }

    public int readableCount() { return readableCount; }
}
