package dev.jvbus.core.ring;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.core.memory.HostMemory;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.Test;

/** FrameCopy copies exactly the bytes MemorySegment.copy would, at every length and offset, and no others. */
class FrameCopyTest {

    @Test
    void copiesExactlyTheRangeAtEveryLengthAndOffsetBetweenNativeAndHeapSegments() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment nativeSrc = arena.allocate(256);
            for (int i = 0; i < 256; i++) nativeSrc.set(ValueLayout.JAVA_BYTE, i, (byte) (i * 37 + 11));
            MemorySegment heapSrc = MemorySegment.ofArray(nativeSrc.toArray(ValueLayout.JAVA_BYTE));
            for (MemorySegment src : new MemorySegment[] {nativeSrc, heapSrc}) {
                for (boolean toHeap : new boolean[] {false, true}) {
                    for (int len = 0; len <= 80; len++) {
                        for (int so = 0; so < 9; so++) {
                            for (int d = 0; d < 9; d += 3) {
                                MemorySegment dst = toHeap ? MemorySegment.ofArray(new byte[128]) : arena.allocate(128);
                                MemorySegment expected = MemorySegment.ofArray(new byte[128]);
                                dst.fill((byte) 0x5a);
                                expected.fill((byte) 0x5a);
                                FrameCopy.copy(src, so, dst, d, len);
                                MemorySegment.copy(src, so, expected, d, len);
                                assertThat(dst.mismatch(expected)).as("len %d, src offset %d, dst offset %d", len, so, d).isEqualTo(-1L);
                            }
                        }
                    }
                }
            }
        }
    }

    @Test
    void aRangeBeyondEitherSegmentThrowsAndWritesNothing() {
        MemorySegment src = MemorySegment.ofArray(new byte[32]);
        MemorySegment dst = MemorySegment.ofArray(new byte[16]);
        for (int len : new int[] {3, 8, 12, 16, 40}) {
            assertThatThrownBy(() -> FrameCopy.copy(src, 0, dst, 16 - len + 1, len)).isInstanceOf(IndexOutOfBoundsException.class);
            assertThatThrownBy(() -> FrameCopy.copy(src, 32 - len + 1, dst, 0, Math.min(len, 16))).isInstanceOf(IndexOutOfBoundsException.class);
        }
        assertThatThrownBy(() -> FrameCopy.copy(src, 0, dst, 0, -1)).isInstanceOf(IndexOutOfBoundsException.class);
        assertThat(dst.toArray(ValueLayout.JAVA_BYTE)).containsOnly((byte) 0);
    }

    @Test
    void betweenGlobalScopeSegmentsItCopiesTheSameBytesAndKeepsEveryBound() {
        MemorySegment block = Arena.global().allocate(512, 8);   // once per JVM: global memory is never freed
        MemorySegment src = block.asSlice(0, 256), dst = block.asSlice(256, 128), guard = block.asSlice(384, 128);
        for (int i = 0; i < 256; i++) src.set(ValueLayout.JAVA_BYTE, i, (byte) (i * 37 + 11));
        guard.fill((byte) 0x77);
        assertEveryCopyMatches(src, dst, 0, (so, d, len) -> FrameCopy.copy(src, so, dst, d, len));
        dst.fill((byte) 0);
        MemorySegment small = dst.asSlice(0, 16);
        for (int len : new int[] {8, 12, 16}) {
            assertThatThrownBy(() -> FrameCopy.copy(src, 0, small, 16 - len + 1, len)).isInstanceOf(IndexOutOfBoundsException.class);
            assertThatThrownBy(() -> FrameCopy.copy(src.asSlice(0, 16), 16 - len + 1, small, 0, len)).isInstanceOf(IndexOutOfBoundsException.class);
            assertThatThrownBy(() -> FrameCopy.copy(src, 0, small.asReadOnly(), 0, len)).isInstanceOf(IllegalArgumentException.class);
        }
        assertThat(dst.toArray(ValueLayout.JAVA_BYTE)).containsOnly((byte) 0);
        assertThat(guard.toArray(ValueLayout.JAVA_BYTE)).as("nothing written past the destination").containsOnly((byte) 0x77);
    }

    @Test
    void atHostAddressesItCopiesExactlyTheRangeAndNothingAroundIt() {
        // Both sides as HostMemory.view gives them for global-scope memory: (ALL, host address). No segment is left to
        // check, so the bytes around the destination are the test that only [d, d + len) is written.
        MemorySegment block = Arena.global().allocate(512, 8);
        MemorySegment src = block.asSlice(0, 256), dst = block.asSlice(256, 128), guard = block.asSlice(384, 128);
        for (int i = 0; i < 256; i++) src.set(ValueLayout.JAVA_BYTE, i, (byte) (i * 37 + 11));
        guard.fill((byte) 0x77);
        assertThat(HostMemory.view(src)).isSameAs(HostMemory.ALL);
        assertThat(HostMemory.view(dst)).isSameAs(HostMemory.ALL);
        assertEveryCopyMatches(src, dst, 8, (so, d, len) ->
                FrameCopy.copy(HostMemory.ALL, HostMemory.offsetInView(src, so), HostMemory.ALL, HostMemory.offsetInView(dst, d), len));
        assertThat(guard.toArray(ValueLayout.JAVA_BYTE)).as("nothing written past the destination").containsOnly((byte) 0x77);
    }

    /** A copy of {@code len} bytes from the source at {@code srcOffset} to the destination at {@code dstOffset}. */
    private interface Copy {
        void copy(long srcOffset, long dstOffset, int len);
    }

    /**
     * For every length 0..80, source offset 0..8 and destination offset {@code dFrom}, +3, +6: {@code copy} leaves in
     * {@code dst} (128 bytes, filled with 0x5a first) exactly what {@link MemorySegment#copy} leaves in a copy of it.
     */
    private static void assertEveryCopyMatches(MemorySegment src, MemorySegment dst, int dFrom, Copy copy) {
        for (int len = 0; len <= 80; len++) {
            for (int so = 0; so < 9; so++) {
                for (int d = dFrom; d < dFrom + 9; d += 3) {
                    MemorySegment expected = MemorySegment.ofArray(new byte[128]);
                    dst.fill((byte) 0x5a);
                    expected.fill((byte) 0x5a);
                    copy.copy(so, d, len);
                    MemorySegment.copy(src, so, expected, d, len);
                    assertThat(dst.mismatch(expected)).as("len %d, src offset %d, dst offset %d", len, so, d).isEqualTo(-1L);
                }
            }
        }
    }
}
