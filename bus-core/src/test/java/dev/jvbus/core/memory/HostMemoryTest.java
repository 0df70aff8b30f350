package dev.jvbus.core.memory;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;

/**
 * HostMemory: which memory may be read at its host address (global scope, native: never closed by FFM), and its
 * accessors read and copy exactly what the segment's own accesses would, through {@link HostMemory#ALL} or not.
 */
class HostMemoryTest {
    private static final ValueLayout.OfLong BE64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    private static final ValueLayout.OfInt LE32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort LE16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** Once per JVM: global memory is never freed. */
    private static final MemorySegment GLOBAL_BLOCK = Arena.global().allocate(512, 64);

    @Test
    void onlyNativeMemoryOfTheGlobalScopeIsDirect() {
        try (Arena shared = Arena.ofShared(); Arena confined = Arena.ofConfined()) {
            MemorySegment mapped = shared.allocate(64);
            // A connector's mapping of a peer's file: an address given a size, in the global scope.
            MemorySegment adopted = MemorySegment.ofAddress(mapped.address()).reinterpret(64);
            assertThat(HostMemory.isDirect(adopted)).isTrue();
            assertThat(HostMemory.isDirect(GLOBAL_BLOCK)).isTrue();
            assertThat(HostMemory.isDirect(mapped)).as("a closable arena's memory keeps its checks").isFalse();
            assertThat(HostMemory.isDirect(confined.allocate(8))).isFalse();
            assertThat(HostMemory.isDirect(Arena.ofAuto().allocate(8))).isFalse();
            assertThat(HostMemory.isDirect(MemorySegment.ofArray(new byte[8]))).as("heap memory has no host address").isFalse();
        }
    }

    @Test
    void aDirectSegmentIsViewedAsAllAtItsHostAddressAndAnyOtherAsItself() {
        assertThat(HostMemory.view(GLOBAL_BLOCK)).isSameAs(HostMemory.ALL);
        assertThat(HostMemory.offsetInView(GLOBAL_BLOCK, 24)).isEqualTo(GLOBAL_BLOCK.address() + 24);
        GLOBAL_BLOCK.set(BE64, 24, 0x0102030405060708L);
        assertThat(HostMemory.getLong(HostMemory.view(GLOBAL_BLOCK), BE64, HostMemory.offsetInView(GLOBAL_BLOCK, 24)))
                .isEqualTo(0x0102030405060708L);
        MemorySegment heap = MemorySegment.ofArray(new byte[32]);
        assertThat(HostMemory.view(heap)).isSameAs(heap);
        assertThat(HostMemory.offsetInView(heap, 24)).isEqualTo(24);
    }

    @Test
    void readsThroughAllAtAHostAddressSeeWhatTheSegmentHoldsAtEveryOffset() {
        MemorySegment s = GLOBAL_BLOCK.asSlice(0, 128);
        for (int i = 0; i < 128; i++) s.set(ValueLayout.JAVA_BYTE, i, (byte) (i * 73 + 0x91));
        for (long off = 0; off <= 128 - 8; off++) {
            long host = s.address() + off;
            assertThat(HostMemory.getLong(HostMemory.ALL, BE64, host)).isEqualTo(s.get(BE64, off));
            assertThat(HostMemory.getInt(HostMemory.ALL, LE32, host)).isEqualTo(s.get(LE32, off));
            assertThat(HostMemory.getShort(HostMemory.ALL, LE16, host)).isEqualTo(s.get(LE16, off));
            assertThat(HostMemory.getByte(HostMemory.ALL, ValueLayout.JAVA_BYTE, host)).isEqualTo(s.get(ValueLayout.JAVA_BYTE, off));
            // Any other segment: its own checked access, same value.
            assertThat(HostMemory.getLong(s, BE64, off)).isEqualTo(s.get(BE64, off));
        }
    }

    @Test
    void anyOtherSegmentKeepsItsBoundsAndItsLiveness() {
        MemorySegment heap = MemorySegment.ofArray(new byte[16]);
        assertThatThrownBy(() -> HostMemory.getLong(heap, BE64, 9)).isInstanceOf(IndexOutOfBoundsException.class);
        assertThatThrownBy(() -> HostMemory.getInt(heap, LE32, -1)).isInstanceOf(IndexOutOfBoundsException.class);
        assertThatThrownBy(() -> HostMemory.copy(heap, 0, MemorySegment.ofArray(new byte[8]), 0, 9))
                .isInstanceOf(IndexOutOfBoundsException.class);
        MemorySegment closed;
        try (Arena a = Arena.ofShared()) {
            closed = a.allocate(16);
        }
        MemorySegment gone = closed;
        assertThatThrownBy(() -> HostMemory.getShort(gone, LE16, 0)).isInstanceOf(IllegalStateException.class);
    }

    @Test
    void copiesEveryCombinationOfAllAndASegmentByteForByte() {
        MemorySegment src = GLOBAL_BLOCK.asSlice(128, 128), dst = GLOBAL_BLOCK.asSlice(256, 128), guard = GLOBAL_BLOCK.asSlice(384, 128);
        for (int i = 0; i < 128; i++) src.set(ValueLayout.JAVA_BYTE, i, (byte) (i * 37 + 11));
        guard.fill((byte) 0x77);
        for (int mode = 0; mode < 4; mode++) {
            boolean fromAll = (mode & 1) != 0, toAll = (mode & 2) != 0;
            for (int len : new int[] {0, 1, 7, 8, 15, 16, 17, 64, 100}) {
                for (int so = 0; so < 5; so++) {
                    MemorySegment heapDst = MemorySegment.ofArray(new byte[128]);
                    MemorySegment expected = MemorySegment.ofArray(new byte[128]);
                    dst.fill((byte) 0x5a);
                    heapDst.fill((byte) 0x5a);
                    expected.fill((byte) 0x5a);
                    MemorySegment.copy(src, so, expected, 3, len);
                    MemorySegment from = fromAll ? HostMemory.ALL : src;
                    long fromOff = fromAll ? src.address() + so : so;
                    if (toAll) {
                        HostMemory.copy(from, fromOff, HostMemory.ALL, dst.address() + 3, len);
                        assertThat(dst.mismatch(expected)).as("mode %d, len %d, src offset %d", mode, len, so).isEqualTo(-1L);
                    } else {
                        HostMemory.copy(from, fromOff, heapDst, 3, len);
                        assertThat(heapDst.mismatch(expected)).as("mode %d, len %d, src offset %d", mode, len, so).isEqualTo(-1L);
                    }
                }
            }
        }
        assertThat(guard.toArray(ValueLayout.JAVA_BYTE)).containsOnly((byte) 0x77);
    }

    @Test
    void theMaskChangesNoUserSpaceAddress() {
        MemorySegment s = GLOBAL_BLOCK;
        assertThat(HostMemory.host(s.address())).isEqualTo(s.address());
        assertThat(HostMemory.host(s.address() + s.byteSize() - 1)).isEqualTo(s.address() + s.byteSize() - 1);
        assertThat(HostMemory.host((1L << 56) - 1)).isEqualTo((1L << 56) - 1);
    }
}
