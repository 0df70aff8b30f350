package dev.jvbus.net;

/** Why a frame did not reach a port. Counted per port; nothing is lost silently. */
public enum DropReason {
    /** The receiver had no rx buffer posted: dropped like a NIC with a full ring, never queued. */
    NO_RX_BUFFER,
    /** The frame is larger than the receiver's buffers or MTU. */
    TOO_BIG,
    /** Shorter than an Ethernet header. */
    RUNT,
    /** The port's device is not running (reset, link down). */
    PORT_DOWN,
    /** The receiving device's ring is broken (it went NEEDS_RESET). */
    RING_FAULT,
    /** The source port sent to its own address (hairpin), which a learning switch never reflects. */
    HAIRPIN,
    /** The backend failed to take the frame (a TAP write error, say). */
    BACKEND_ERROR,
    /**
     * The backend could not take the frame now (a TAP write that would block: the kernel's queue
     * is full). Dropped and counted like {@link #NO_RX_BUFFER}, never queued.
     */
    BACKEND_BUSY,
    /**
     * Another delivery to the port has not finished within the switch's stall bound: the receiver is
     * wedged (stuck in a call that does not return). The sender drops the frame and goes on rather
     * than wait for it; later senders drop at once until that delivery returns.
     */
    PORT_STALLED,
    /**
     * The sending port is held to the MAC its device was assigned, and the frame's source was another
     * address (someone else's, a group address, zero). Counted on the sender; the frame is neither
     * forwarded nor learned, so it cannot take another port's traffic. See {@link MacSpoofCheck}.
     */
    SPOOFED_SOURCE,
    /**
     * The frame's offload header ({@link FrameOffload}: a partial checksum, a segmentation request) does
     * not describe the frame: counted on the sender when the switch checks it at ingress, or on a
     * receiver the switch was segmenting for when the sender rewrote the frame's headers meanwhile.
     */
    BAD_OFFLOAD
}
