package dev.jvbus.connector.kvm;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.core.bus.DevId;
import dev.jvbus.core.sys.Memfd;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/**
 * The bus event ring as the guest sees it, in real shared memory (a memfd), without a VM: the layout the
 * guest reads, a full ring that counts what it loses, and a guest that writes a tail of its own invention,
 * which must never make the VMM write outside the ring (guard bytes around it stay untouched).
 */
class BusEventRingTest {
    static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED;
    static final int GUARD = 64;
    static final byte POISON = (byte) 0xA5;

    @Test
    void eventsAreWrittenInTheLayoutTheGuestReadsAndPublishedByHead() {
        try (Memfd m = Memfd.create("events", 4096)) {
            MemorySegment ring = ring(m, 16 + 32 * 4);
            BusEventRing events = new BusEventRing(ring);
            assertThat(events.count()).isEqualTo(4);
            assertThat(ring.get(INT, 8)).as("count, for the guest").isEqualTo(4);

            assertThat(events.post(BusEventRing.Kind.DEVADD, new DevId(7), "virtio-net")).isTrue();
            assertThat(events.post(BusEventRing.Kind.NEEDS_RESET, new DevId(-2), "a reason far longer than twenty-three bytes")).isTrue();

            assertThat(ring.get(INT, 0)).as("head").isEqualTo(2);
            assertThat(ring.get(INT, 16)).as("kind").isEqualTo(1);
            assertThat(ring.get(INT, 20)).as("devid").isEqualTo(7);
            assertThat(detail(ring, 0)).isEqualTo("virtio-net");
            assertThat(ring.get(INT, 48)).isEqualTo(3);
            assertThat(Integer.toUnsignedLong(ring.get(INT, 52))).as("a devid above 2^31").isEqualTo(0xFFFF_FFFEL);
            assertThat(detail(ring, 1)).as("cut to 23 bytes and NUL-terminated").isEqualTo("a reason far longer tha");
            assertGuardsIntact(m);
        }
    }

    @Test
    void aFullRingCountsWhatItLosesAndTakesEventsAgainOnceTheGuestConsumed() {
        try (Memfd m = Memfd.create("events", 4096)) {
            MemorySegment ring = ring(m, 16 + 32 * 3);
            BusEventRing events = new BusEventRing(ring);
            for (int i = 0; i < 3; i++) assertThat(events.post(BusEventRing.Kind.DEVADD, new DevId(i), "venet")).isTrue();
            assertThat(events.post(BusEventRing.Kind.DEVADD, new DevId(3), "venet")).as("no room").isFalse();
            assertThat(ring.get(INT, 12)).as("lost, for the guest").isEqualTo(1);

            ring.set(INT, 4, 2);   // the guest consumed two
            assertThat(events.post(BusEventRing.Kind.DEVDROP, new DevId(9), "venet")).isTrue();
            assertThat(ring.get(INT, 0)).isEqualTo(4);
            assertThat(ring.get(INT, 16)).as("entry 3 wraps to slot 0").isEqualTo(2);
            assertThat(ring.get(INT, 20)).isEqualTo(9);
            assertGuardsIntact(m);
        }
    }

    @Test
    void aTailTheGuestMadeUpLosesItsEventsButNeverMovesAWriteOutsideTheRing() {
        try (Memfd m = Memfd.create("events", 4096)) {
            MemorySegment ring = ring(m, 16 + 32 * 2);
            BusEventRing events = new BusEventRing(ring);
            // ahead of head, as far behind as the ring is long (full), and half the number space away either way
            for (int tail : new int[] {5, -2, Integer.MIN_VALUE, Integer.MAX_VALUE}) {
                ring.set(INT, 4, tail);
                assertThat(events.post(BusEventRing.Kind.DEVADD, new DevId(1), "venet")).as("tail " + tail).isFalse();
            }
            assertThat(events.lost()).isEqualTo(4);
            assertThat(ring.get(INT, 0)).as("head unmoved").isZero();
            ring.set(INT, 4, 0);
            assertThat(events.post(BusEventRing.Kind.DEVADD, new DevId(1), "venet")).as("an honest tail again").isTrue();
            assertGuardsIntact(m);
        }
    }

    /** A ring of {@code bytes} in the middle of the memfd, poison on both sides. */
    private static MemorySegment ring(Memfd m, int bytes) {
        m.segment().fill(POISON);
        return m.segment().asSlice(GUARD, bytes);
    }

    private static void assertGuardsIntact(Memfd m) {
        MemorySegment all = m.segment();
        for (int i = 0; i < GUARD; i++) assertThat(all.get(ValueLayout.JAVA_BYTE, i)).as("guard byte " + i).isEqualTo(POISON);
        // After the ring: the rest of the page. Rings in these tests are at most 16 + 32 * 4 bytes.
        for (long i = GUARD + 16 + 32 * 4; i < all.byteSize(); i++) {
            byte b = all.get(ValueLayout.JAVA_BYTE, i);
            if (b != POISON) throw new AssertionError("byte " + i + " after the ring was written: " + b);
        }
    }

    private static String detail(MemorySegment ring, int slot) {
        byte[] b = ring.asSlice(16 + 32L * slot + 8, 24).toArray(ValueLayout.JAVA_BYTE);
        int n = 0;
        while (n < b.length && b[n] != 0) n++;
        return new String(b, 0, n, StandardCharsets.UTF_8);
    }
}
