package dev.jvbus.core.ring.virtio;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

class SplitRingLayoutTest {

    @ParameterizedTest
    @ValueSource(ints = {1, 2, 8, 256, 1024, 32768})
    void offsetsAndSizesMatchTheSpec(int size) {
        SplitRingLayout l = SplitRingLayout.of(size);
        // spec 2.7 "Virtqueue Part Alignment and Size": 16*Q, 6+2*Q, 6+8*Q
        assertThat(l.descTableBytes()).isEqualTo(16L * size);
        assertThat(l.availRingBytes()).isEqualTo(6L + 2L * size);
        assertThat(l.usedRingBytes()).isEqualTo(6L + 8L * size);
        assertThat(l.mask()).isEqualTo(size - 1);
        // struct virtq_desc { le64 addr; le32 len; le16 flags; le16 next; }
        assertThat(SplitRingLayout.descOffset(size - 1)).isEqualTo(16L * (size - 1));
        assertThat(SplitRingLayout.DESC_LEN).isEqualTo(8);
        assertThat(SplitRingLayout.DESC_FLAGS).isEqualTo(12);
        assertThat(SplitRingLayout.DESC_NEXT).isEqualTo(14);
        // struct virtq_avail { le16 flags; le16 idx; le16 ring[Q]; le16 used_event; }
        assertThat(SplitRingLayout.availEntryOffset(0)).isEqualTo(4);
        assertThat(SplitRingLayout.availEntryOffset(size - 1)).isEqualTo(4L + 2L * (size - 1));
        assertThat(l.usedEventOffset()).isEqualTo(4L + 2L * size).isEqualTo(l.availRingBytes() - 2);
        // struct virtq_used { le16 flags; le16 idx; struct { le32 id; le32 len; } ring[Q]; le16 avail_event; }
        assertThat(SplitRingLayout.usedElemOffset(0)).isEqualTo(4);
        assertThat(SplitRingLayout.usedElemOffset(size - 1) + SplitRingLayout.USED_ELEM_LEN).isEqualTo(4L + 8L * (size - 1) + 4);
        assertThat(l.availEventOffset()).isEqualTo(4L + 8L * size).isEqualTo(l.usedRingBytes() - 2);
    }

    @Test
    void refusesSizesThatAreNotPowersOfTwoInRange() {
        for (int bad : new int[] {0, -1, 3, 100, 65536, 32769})
            assertThatThrownBy(() -> SplitRingLayout.of(bad)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void needEventMatchesLinuxVringNeedEvent() {
        // signal when event idx lies in [old, new)
        assertThat(SplitRingLayout.needEvent(0, 1, 0)).isTrue();
        assertThat(SplitRingLayout.needEvent(5, 5, 0)).isFalse();
        assertThat(SplitRingLayout.needEvent(4, 5, 0)).isTrue();
        assertThat(SplitRingLayout.needEvent(5, 10, 6)).isFalse();
        assertThat(SplitRingLayout.needEvent(6, 10, 6)).isTrue();
        // across the u16 wrap
        assertThat(SplitRingLayout.needEvent(0xfffe, 2, 0xfff0)).isTrue();
        assertThat(SplitRingLayout.needEvent(3, 2, 0xfff0)).isFalse();
        assertThat(SplitRingLayout.needEvent(0xffff, 0, 0xffff)).isTrue();
    }
}
