package dev.jvbus.core.memory;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class GuestMemoryTest {
    private final Arena arena = Arena.ofConfined();
    private final MemoryRegion low = new MemoryRegion(0x1000, 0x1000, arena.allocate(0x1000));
    private final MemoryRegion high = new MemoryRegion(0x2000, 0x1000, arena.allocate(0x1000)); // adjacent to low
    private final MemoryRegion top = new MemoryRegion(-0x1000L, 0x1000, arena.allocate(0x1000));  // last page of 2^64
    private final GuestMemory mem = GuestMemory.of(high, top, low);

    @AfterEach
    void close() {
        arena.close();
    }

    @Test
    void translatesInsideEachRegion() throws Exception {
        assertThat(mem.region(0x1000, 0x1000)).isSameAs(low);
        assertThat(mem.region(0x2ffc, 4)).isSameAs(high);
        assertThat(mem.region(-8L, 8)).isSameAs(top);
        mem.writeInt(0x2ffc, 0xCAFEBABE);
        assertThat(mem.readInt(0x2ffc)).isEqualTo(0xCAFEBABE);
        assertThat(mem.regions()).containsExactly(low, high, top);
    }

    @Test
    void aRangeMayNotStraddleRegionsEvenWhenAdjacent() {
        assertThatThrownBy(() -> mem.region(0x1ffc, 8))
                .isInstanceOf(GuestMemoryException.class)
                .hasMessage("address range outside guest memory: [0x1ffc, +8)");
    }

    @Test
    void addressPlusLengthNeverWraps() {
        // 0xffff...fff8 + 16 wraps to 8: must not be accepted as "inside" anything
        assertThatThrownBy(() -> mem.region(-8L, 16)).isInstanceOf(GuestMemoryException.class);
        assertThatThrownBy(() -> mem.region(0x1000, Long.MAX_VALUE)).isInstanceOf(GuestMemoryException.class);
        assertThatThrownBy(() -> mem.region(0x1000, -1)).isInstanceOf(GuestMemoryException.class).hasMessageStartingWith("negative length");
        assertThatThrownBy(() -> mem.region(0xfff, 1)).isInstanceOf(GuestMemoryException.class);
        assertThatThrownBy(() -> mem.region(0x3000, 1)).isInstanceOf(GuestMemoryException.class);
        assertThatThrownBy(() -> mem.readLong(0x1ffc)).isInstanceOf(GuestMemoryException.class);
    }

    @Test
    void zeroLengthAtTheEndIsInsideButOnePastIsNot() throws Exception {
        assertThat(mem.region(0x2000, 0)).isNotNull();
        assertThatThrownBy(() -> mem.region(0x3001, 0)).isInstanceOf(GuestMemoryException.class);
    }

    @Test
    void copiesInAndOut() throws Exception {
        MemorySegment src = arena.allocate(16);
        for (int i = 0; i < 16; i++) src.set(java.lang.foreign.ValueLayout.JAVA_BYTE, i, (byte) i);
        mem.copyToGuest(src, 0, 0x1ff0, 16);
        MemorySegment dst = arena.allocate(16);
        mem.copyFromGuest(0x1ff0, dst, 0, 16);
        assertThat(dst.mismatch(src)).isEqualTo(-1);
        assertThatThrownBy(() -> mem.copyToGuest(src, 0, 0x1ff8, 16)).isInstanceOf(GuestMemoryException.class);
    }

    @Test
    void overlappingRegionsAreRefusedAtSetup() {
        MemoryRegion overlap = new MemoryRegion(0x1800, 0x1000, arena.allocate(0x1000));
        assertThatThrownBy(() -> GuestMemory.of(low, overlap)).hasMessageContaining("overlap");
        assertThatThrownBy(() -> new MemoryRegion(0, 16, arena.allocate(8))).hasMessageContaining("segment is 8 bytes");
        assertThatThrownBy(() -> new MemoryRegion(-8L, 16, arena.allocate(16))).hasMessageContaining("wraps");
    }

    @Test
    void anEmptyTableTranslatesNothing() {
        assertThatThrownBy(() -> GuestMemory.empty().region(0, 0)).isInstanceOf(GuestMemoryException.class);
    }
}
