package dev.jvbus.model.virtionet;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.core.memory.DirtyLog;
import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.memory.MemoryRegion;
import dev.jvbus.net.FrameOffload;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import org.junit.jupiter.api.Test;

/**
 * Held rx headers are written at publication where the buffer does not hold them already, and only those are
 * marked dirty for migration: a buffer whose bytes already are the header is neither stored to (its line stays
 * shared with the front-end's core) nor logged (no byte changed).
 */
class RxHeadersTest {
    static final long G = 0x10_0000L, PAGE = 1 << DirtyLog.PAGE_SHIFT;
    static final ValueLayout.OfLong LE64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfInt LE32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    @Test
    void onlyHeadersThatDifferAreWrittenAndMarkedDirty() {
        Arena arena = Arena.ofAuto();
        MemorySegment mem = arena.allocate(4 * PAGE, 8);
        GuestMemory memory = GuestMemory.of(new MemoryRegion(G, 4 * PAGE, mem));
        long pages = (G + 4 * PAGE) >> DirtyLog.PAGE_SHIFT;
        DirtyLog log = new DirtyLog(arena.allocate((pages + 63) / 64 * 8, 8));
        memory.setDirtyLog(log);

        FrameOffload plain = new FrameOffload();
        FrameOffload partial = new FrameOffload().set(FrameOffload.F_NEEDS_CSUM, FrameOffload.GSO_NONE, 0, 0, 34, 6);
        long same = 0x134, stale = PAGE + 0x134, zeros = 2 * PAGE + 0x134;   // a header's place in three buffers
        FrameOffload.writeVnetV1(mem, same, plain.vnetV1Head(), plain.vnetV1Tail(1));
        FrameOffload.writeVnetV1(mem, stale, partial.vnetV1Head(), partial.vnetV1Tail(1));

        RxHeaders h = new RxHeaders();
        assertThat(h.hold(mem, same, G + same, plain, 1)).isTrue();
        assertThat(h.hold(mem, stale, G + stale, plain, 1)).isTrue();
        assertThat(h.hold(mem, zeros, G + zeros, plain, 1)).isTrue();          // num_buffers 1 where 0 was
        h.writeAll(memory);

        for (long at : new long[] {same, stale, zeros}) {
            assertThat(mem.get(LE64, at)).as("flags .. csum_start at %x", at).isEqualTo(plain.vnetV1Head());
            assertThat(mem.get(LE32, at + 8)).as("csum_offset, num_buffers at %x", at).isEqualTo(1 << 16);
        }
        assertThat(log.isDirty(G + same)).as("unchanged: not logged").isFalse();
        assertThat(log.isDirty(G + stale)).isTrue();
        assertThat(log.isDirty(G + zeros)).isTrue();
        assertThat(log.pagesMarked()).isEqualTo(2);

        h.writeAll(memory);                                                  // none held any more: nothing written
        assertThat(log.pagesMarked()).isEqualTo(2);
    }
}
