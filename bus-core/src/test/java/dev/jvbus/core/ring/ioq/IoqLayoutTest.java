package dev.jvbus.core.ring.ioq;

import static dev.jvbus.core.ring.ioq.IoqLayout.*;
import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.core.doorbell.Notifier;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;

/** The offsets of IOQ-LAYOUT.md (vbus ioq.h v4 / shm_signal.h v1 on a 64-bit LE compiler). */
class IoqLayoutTest {

    @Test
    void offsetsMatchTheDocumentedStructs() {
        assertThat(MAGIC_OFFSET).isZero();
        assertThat(VERSION_OFFSET).isEqualTo(4);
        assertThat(SIGNAL_OFFSET).isEqualTo(8);
        assertThat(SIGNAL_DESC_SIZE).isEqualTo(16);
        assertThat(irqOffset(NORTH, IRQ_ENABLED)).isEqualTo(16);
        assertThat(irqOffset(NORTH, IRQ_PENDING)).isEqualTo(17);
        assertThat(irqOffset(NORTH, IRQ_DIRTY)).isEqualTo(18);
        assertThat(irqOffset(SOUTH, IRQ_ENABLED)).isEqualTo(19);
        assertThat(irqOffset(SOUTH, IRQ_PENDING)).isEqualTo(20);
        assertThat(irqOffset(SOUTH, IRQ_DIRTY)).isEqualTo(21);
        assertThat(idxOffset(IDX_VALID, IDX_HEAD)).isEqualTo(24);
        assertThat(idxOffset(IDX_VALID, IDX_TAIL)).isEqualTo(28);
        assertThat(idxOffset(IDX_VALID, IDX_FULL)).isEqualTo(32);
        assertThat(idxOffset(IDX_INUSE, IDX_HEAD)).isEqualTo(36);
        assertThat(idxOffset(IDX_INUSE, IDX_TAIL)).isEqualTo(40);
        assertThat(idxOffset(IDX_INUSE, IDX_FULL)).isEqualTo(44);
        assertThat(COUNT_OFFSET).isEqualTo(48);
        assertThat(descOffset(0)).isEqualTo(56);
        assertThat(descOffset(3)).isEqualTo(56 + 3 * 32);
        assertThat(DESC_COOKIE).isZero();
        assertThat(DESC_PTR).isEqualTo(8);
        assertThat(DESC_LEN).isEqualTo(16);
        assertThat(DESC_VALID).isEqualTo(24);
        assertThat(DESC_SOWN).isEqualTo(25);
        assertThat(DESC_SIZE).isEqualTo(32);
        assertThat(HEAD_STRUCT_SIZE).isEqualTo(88);                        // sizeof(struct ioq_ring_head)
        assertThat(ringSize(256)).isEqualTo(88 + 32L * 255);                // IOQ_HEAD_DESC_SIZE(256)
        assertThat(RING_MAGIC).isEqualTo(0x47fa2fe4);
        assertThat(RING_VERSION).isEqualTo(4);
        assertThat(SIGNAL_MAGIC).isEqualTo(0x58fa39df);
        assertThat(SIGNAL_VERSION).isEqualTo(1);
    }

    @Test
    void bytesInMemoryAreLittleEndianAtTheDocumentedPlaces() throws Exception {
        try (TestMemory m = new TestMemory()) {
            IoqDriver drv = IoqDriver.create(0, m.memory, TestMemory.RING_A, 4, Notifier.NONE, true);
            assertThat(drv.offer(0x1122334455667788L, TestMemory.BUFS_A, 16)).isTrue();
            drv.kick();
            MemorySegment h = m.at(TestMemory.RING_A, ringSize(4));
            ValueLayout.OfInt le32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
            ValueLayout.OfLong le64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
            assertThat(h.asSlice(0, 4).toArray(ValueLayout.JAVA_BYTE)).containsExactly(0xe4, 0x2f, 0xfa, 0x47);
            assertThat(h.get(le32, 4)).isEqualTo(4);
            assertThat(h.get(le32, 8)).isEqualTo(0x58fa39df);
            assertThat(h.get(le32, 12)).isEqualTo(1);
            assertThat(h.get(ValueLayout.JAVA_BYTE, 21)).as("south dirty after the kick").isEqualTo((byte) 1);
            assertThat(h.get(le32, 28)).as("valid.tail").isEqualTo(1);
            assertThat(h.get(le32, 40)).as("inuse.tail").isEqualTo(1);
            assertThat(h.get(le32, 48)).as("count").isEqualTo(4);
            assertThat(h.get(le64, 56)).as("cookie").isEqualTo(0x1122334455667788L);
            assertThat(h.get(le64, 64)).as("ptr").isEqualTo(TestMemory.BUFS_A);
            assertThat(h.get(le64, 72)).as("len").isEqualTo(16);
            assertThat(h.get(ValueLayout.JAVA_BYTE, 80)).as("valid").isEqualTo((byte) 1);
            assertThat(h.get(ValueLayout.JAVA_BYTE, 81)).as("sown").isEqualTo((byte) 1);
        }
    }
}
