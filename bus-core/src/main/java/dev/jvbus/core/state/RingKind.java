package dev.jvbus.core.state;

/** Which ring layout a queue uses. Part of the saved state: a split ring never restores as an IOQ. */
public enum RingKind {
    /** virtio 1.x split virtqueue: descriptor table, available ring, used ring. */
    SPLIT,
    /** vbus IOQ ring: ring head plus a descriptor table with valid/sown ownership bits. */
    IOQ
}
