package dev.jvbus.connector.kvm;

/**
 * Where a round trip of the bundled guest driver failed, venet's or virtio-net's: EXIT code 100 + stage,
 * the report {@code [value, a, b, c]} (guest/vbus-guest.c, {@code enum stage}; the order is the ABI).
 */
public enum RoundTripStage {
    OPEN, SHM, FEATURES, NEGCAP, MAC, QUEUE, SIGNAL, DRIVER_OK, LINKUP, LINK_EVENT,
    /** a = nothing; value = the cookie (sequence number) of a tx frame the device completed with length 0 (venet) */
    TX_DROPPED,
    /** value = sent, a = received, b = tx completions: nothing moved for the patience */
    STALLED,
    /** value = sequence number, a = length received, b = length expected */
    RX_LENGTH,
    /** value = sequence number, a = byte offset, b = byte expected, c = byte received: the first mismatch */
    RX_BYTE,
    /** value = the queue, a = the descriptor index or used id the device handed back out of range */
    RING,
    /** value = sequence number, a = num_buffers, b and c = flags and gso_type of a virtio_net_hdr that is not a plain one */
    RX_HEADER;

    /** The stage of an EXIT code, or null for success or a code that is not a stage. */
    public static RoundTripStage ofExitCode(long code) {
        long i = code - 101;
        return i >= 0 && i < values().length ? values()[(int) i] : null;
    }

    /** The checks both round trips' parameters share (the guest reads them once and trusts the host that wrote them). */
    static void checkShape(int frames, int length, int window, int maxWindow, long patienceTicks, long waitMicros) {
        if (length < 22 || length > 1514) throw new IllegalArgumentException("frame length " + length + " outside 22..1514");
        if (frames < 0) throw new IllegalArgumentException("frames " + frames);
        if (window < 1 || window > maxWindow) throw new IllegalArgumentException("window " + window + " outside 1.." + maxWindow);
        if (patienceTicks <= 0) throw new IllegalArgumentException("patience " + patienceTicks);
        if (waitMicros < 0 || waitMicros > HypercallAbi.MAX_WAIT_MICROS) throw new IllegalArgumentException("wait " + waitMicros + " us");
    }
}
