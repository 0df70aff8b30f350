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
}
