package dev.jvbus.connector.kvm;

import dev.jvbus.core.bus.DevId;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.charset.StandardCharsets;

/**
 * The bus-to-guest event ring a micro-VM's guest registers with BUSEVENTS (HYPERCALLS.md, "Bus events"):
 * DEVADD, DEVDROP and NEEDS_RESET written by the VMM into guest memory, one producer (this, under its own
 * lock) and one consumer (the guest).
 *
 * <p>Layout, little-endian: {@code u32 head} (the VMM's count of events written, free-running),
 * {@code u32 tail} (the guest's count of events consumed), {@code u32 count} (entries, written by the VMM
 * at registration), {@code u32 lost} (events dropped because the ring was full), then {@code count}
 * entries of 32 bytes: {@code u32 kind, u32 devid, char detail[24]} (the type name, or the reset reason,
 * UTF-8, NUL-padded, cut to 23 bytes). Entry {@code i} is at {@code 16 + 32 * (i % count)}.
 *
 * <p>The tail comes from the guest: it is read once per event and only decides whether there is room.
 * A tail that claims more than the ring holds is treated as a full ring, so a hostile guest can lose
 * its own events but never make the VMM write outside the ring.
 */
final class BusEventRing {
    static final int HEADER = 16, ENTRY = 32, DETAIL = 24;
    /** The most entries a ring may have; with the header it fits the largest block a hypercall may name. */
    static final int MAX_ENTRIES = (int) ((HypercallAbi.MAX_BLOCK - HEADER) / ENTRY);

    enum Kind {
        DEVADD(1), DEVDROP(2), NEEDS_RESET(3);

        final int code;

        Kind(int code) { this.code = code; }
    }

    // Aligned (BUSEVENTS takes 8-byte aligned rings only): acquire/release access needs aligned ints.
    private static final VarHandle INT = ValueLayout.JAVA_INT.varHandle();

    private final MemorySegment ring;
    private final int count;
    private int head;
    private int lost;

    /** {@code ring}: the whole block, already bounds-checked against guest memory; at least one entry. */
    BusEventRing(MemorySegment ring) {
        long entries = (ring.byteSize() - HEADER) / ENTRY;
        if (entries < 1 || entries > MAX_ENTRIES) throw new IllegalArgumentException("an event ring of " + ring.byteSize() + " bytes");
        this.ring = ring;
        this.count = (int) entries;
        ring.asSlice(0, HEADER).fill((byte) 0);
        INT.set(ring, 8L, count);
    }

    int count() { return count; }

    /**
     * Writes one event and publishes it (head, with release order after the entry). Returns false, and
     * counts it in {@code lost}, when the ring is full.
     */
    synchronized boolean post(Kind kind, DevId devid, String detail) {
        int tail = (int) INT.getAcquire(ring, 4L);
        int used = head - tail;
        if (used < 0 || used >= count) {   // full, or a tail the guest made up
            INT.setRelease(ring, 12L, ++lost);
            return false;
        }
        long at = HEADER + (long) ENTRY * Integer.remainderUnsigned(head, count);
        INT.set(ring, at, kind.code);
        INT.set(ring, at + 4, devid.value());
        MemorySegment text = ring.asSlice(at + 8, DETAIL);
        text.fill((byte) 0);
        byte[] b = detail.getBytes(StandardCharsets.UTF_8);
        MemorySegment.copy(b, 0, text, ValueLayout.JAVA_BYTE, 0, Math.min(b.length, DETAIL - 1));
        INT.setRelease(ring, 0L, ++head);
        return true;
    }

    /** Byte range of the ring written so far, for dirty tracking: all of it (small, and rarely written). */
    long byteSize() { return ring.byteSize(); }

    synchronized int lost() { return lost; }
}
