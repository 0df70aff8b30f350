package dev.jvbus.core.ring;

/**
 * The other side of a ring broke the ring's rules: a descriptor index out of range, a loop, an
 * address outside guest memory... Carries the queue and a reason a human can act on. It is
 * always the guest's (or client's) error: the queue stops, its device goes NEEDS_RESET, and the
 * bus keeps serving everyone else. Checked, so the device worker must decide what to do with it.
 */
public final class QueueFault extends Exception {
    /** What was wrong. One constant per rule, so tests and operators can tell them apart. */
    public enum Reason {
        QUEUE_NOT_READY("queue is not set up"),
        BAD_QUEUE_SIZE("queue size is not a power of two in range"),
        BAD_RING_ADDRESS("ring area outside guest memory or misaligned"),
        DESC_INDEX_OUT_OF_RANGE("descriptor index out of range"),
        CHAIN_LOOP("descriptor chain loops"),
        CHAIN_TOO_LONG("descriptor chain longer than the queue"),
        NESTED_INDIRECT("indirect descriptor inside an indirect table"),
        INDIRECT_BAD_LENGTH("indirect table length is zero or not a multiple of 16"),
        INDIRECT_NOT_NEGOTIATED("indirect descriptor without VIRTIO_F_INDIRECT_DESC"),
        BUFFER_OUT_OF_RANGE("buffer address range outside guest memory"),
        LENGTH_OVERFLOW("buffer lengths overflow"),
        READABLE_AFTER_WRITABLE("device-readable descriptor after a device-writable one"),
        AVAIL_INDEX_JUMP("available index moved by more than the queue size"),
        USED_INDEX_JUMP("used index moved by more than the queue size"),
        BAD_USED_ID("used element names a descriptor that is not in flight"),
        BAD_DESCRIPTOR("descriptor violates the ring's ownership rules"),
        BAD_RING_MAGIC("ring head or shm-signal magic is wrong"),
        BAD_RING_VERSION("ring head or shm-signal layout version is not supported"),
        INDEX_OUT_OF_RANGE("ring index outside the descriptor table"),
        INDEX_TAMPERED("peer wrote an index that only this side may write"),
        STATE_MISMATCH("saved queue state does not match the ring in memory");

        private final String text;

        Reason(String text) { this.text = text; }

        public String text() { return text; }
    }

    private final int queue;
    private final Reason reason;

    public QueueFault(int queue, Reason reason, String detail) {
        super("queue " + queue + ": " + reason.text() + (detail == null || detail.isEmpty() ? "" : " (" + detail + ")"),
                null, false, false);
        this.queue = queue;
        this.reason = reason;
    }

    public int queue() { return queue; }

    public Reason reason() { return reason; }
}
