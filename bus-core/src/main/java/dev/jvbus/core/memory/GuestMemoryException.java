package dev.jvbus.core.memory;

/**
 * A guest (or client) named memory it does not have: an address outside every region, a range
 * that straddles two regions, or a length that overflows. It is the guest's error: the queue
 * that met it stops and its device goes NEEDS_RESET; the bus carries on.
 */
public final class GuestMemoryException extends Exception {
    private final long address;
    private final long length;

    public GuestMemoryException(long address, long length, String reason) {
        super(reason + ": [0x" + Long.toHexString(address) + ", +" + Long.toUnsignedString(length) + ")", null, false, false);
        this.address = address;
        this.length = length;
    }

    public long address() { return address; }

    public long length() { return length; }
}
