package dev.jvbus.core.ring.virtio;

import static dev.jvbus.core.ring.virtio.SplitRingLayout.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.memory.HostMemory;
import dev.jvbus.core.memory.MemoryRegion;
import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.ring.QueueFault.Reason;
import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.sys.Memfd;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

/**
 * The device's per-batch shortcuts still check every guest value of every buffer: the available index is
 * checked once per batch, the region of the last buffer is asked first, and an IN_ORDER ring tracks buffers
 * in flight by position instead of a per-head flag. A bad value in the middle of a batch, after good buffers
 * that took the shortcut, must stop the queue with its own reason. Rings are written by hand into a real
 * memfd of two regions (as QEMU's guests have: below and above a hole).
 */
class SplitVirtqueueMidBatchTest {
    static final long G = 0x10_0000L;          // region A (rings and buffers)
    static final long MEM = 0x1_0000L;
    static final long G2 = 0x40_0000L;         // region B, after a hole
    static final int SIZE = 8;
    static final long DESC = G, AVAIL = G + 0x100, USED = G + 0x200;
    static final long BUF = G + 0x4000;

    Memfd a, b;
    MemorySegment seg;
    GuestMemory memory;
    int availIdx;

    @BeforeEach
    void setUp() {
        a = Memfd.create("midbatch-a", MEM);
        b = Memfd.create("midbatch-b", MEM);
        seg = a.segment();
        memory = GuestMemory.of(new MemoryRegion(G, MEM, seg), new MemoryRegion(G2, MEM, b.segment()));
    }

    @AfterEach
    void tearDown() {
        a.close();
        b.close();
    }

    @ParameterizedTest(name = "inOrder={0}")
    @ValueSource(booleans = {false, true})
    void aBufferPastTheEndOfTheLastBuffersRegionMidBatchStops(boolean inOrder) throws Exception {
        desc(0, BUF, 64);
        desc(1, BUF + 64, 64);
        desc(2, G + MEM - 32, 64);              // starts in region A, the cached one, ends past it
        desc(3, BUF + 128, 64);
        offerBatch(0, 1, 2, 3);
        assertNthPopStops(queue(inOrder), 2, Reason.BUFFER_OUT_OF_RANGE);
    }

    @ParameterizedTest(name = "inOrder={0}")
    @ValueSource(booleans = {false, true})
    void aBufferInTheHoleAfterBuffersInTheSecondRegionStops(boolean inOrder) throws Exception {
        desc(0, G2 + 0x100, 64);                // region B: the cache now holds B
        desc(1, G2 + 0x200, 64);
        desc(2, G2 + MEM, 8);                   // just past B, in no region
        offerBatch(0, 1, 2);
        assertNthPopStops(queue(inOrder), 2, Reason.BUFFER_OUT_OF_RANGE);
    }

    @Test
    void buffersAlternatingBetweenRegionsAreEachTranslatedToTheirOwn() throws Exception {
        desc(0, BUF, 16);
        desc(1, G2 + 0x10, 16);
        desc(2, BUF + 16, 16);
        offerBatch(0, 1, 2);
        SplitVirtqueue q = queue(true);
        DescriptorChain chain = q.newChain();
        long[] expected = {BUF, G2 + 0x10, BUF + 16};
        for (long addr : expected) {
            assertThat(q.pop(chain)).isTrue();
            MemoryRegion r = memory.region(addr, 16);
            assertThat(chain.segment(0)).isSameAs(r.segment());
            assertThat(chain.offset(0)).isEqualTo(addr - r.guestAddress());
        }
    }

    @ParameterizedTest(name = "inOrder={0}")
    @ValueSource(booleans = {false, true})
    void aHeadOutOfRangeMidBatchStops(boolean inOrder) throws Exception {
        for (int i = 0; i < 3; i++) desc(i, BUF + 64L * i, 64);
        offerBatch(0, 1, SIZE + 3, 2);          // the index window (4 <= size) is fine: the entry is not
        assertNthPopStops(queue(inOrder), 2, Reason.DESC_INDEX_OUT_OF_RANGE);
    }

    @ParameterizedTest(name = "inOrder={0}")
    @ValueSource(booleans = {false, true})
    void aHeadOfferedAgainWhileInFlightMidBatchStops(boolean inOrder) throws Exception {
        for (int i = 0; i < 3; i++) desc(i, BUF + 64L * i, 64);
        offerBatch(0, 1, 2, 1);
        assertNthPopStops(queue(inOrder), 3, Reason.BAD_DESCRIPTOR);
    }

    @Test
    void inOrderAHeadPushedBackMayBeOfferedAgainInTheSameBatch() throws Exception {
        for (int i = 0; i < 2; i++) desc(i, BUF + 64L * i, 64);
        SplitVirtqueue q = queue(true);
        DescriptorChain chain = q.newChain();
        offerBatch(0, 1);
        assertThat(q.pop(chain)).isTrue();
        q.pushUsed(chain.head(), 0);            // head 0 is back (not yet published: the driver may not reuse it,
        offerBatch(0);                          // but a device must not take a returned head for one in flight)
        assertThat(q.pop(chain)).isTrue();
        assertThat(q.pop(chain)).isTrue();
        assertThat(chain.head()).isZero();
        assertThat(q.inFlightCount()).isEqualTo(2);
    }

    /**
     * IN_ORDER in-flight tracking keeps each head's last pop position (u16): 2^16 pops later that position is
     * inside the window again. The head popped there long ago must not be taken for one in flight.
     */
    @Test
    void inOrderAHeadPoppedLongAgoIsNotTakenForInFlightAfterTheIndexWraps() throws Exception {
        desc(0, BUF, 64);
        desc(5, BUF + 64, 64);
        SplitVirtqueue q = queue(true);
        DescriptorChain chain = q.newChain();
        offerBatch(5);                          // head 5 popped at position 0
        roundTrip(q, chain, 5);
        for (int i = 1; i < 0x1_0000; i++) {    // positions 1 .. 65535 all take head 0
            offerBatch(0);
            roundTrip(q, chain, 0);
        }
        offerBatch(0, 5);                       // head 0 at position 65536 (u16 0, head 5's old position)
        assertThat(q.pop(chain)).isTrue();
        assertThat(chain.head()).isZero();
        assertThat(q.pop(chain)).as("head 5 is not in flight").isTrue();
        assertThat(chain.head()).isEqualTo(5);
        q.pushUsed(0, 0);
        q.pushUsed(5, 0);
        assertThat(q.isStopped()).isFalse();
    }

    /**
     * pop takes the entries one acquire of the available index showed published (a window), then acquires
     * again. A window that runs over the ring's end and over the u16 wrap of the index yields exactly its
     * entries, in order, and a bad head in its middle (after the wrap) stops the queue exactly there; the next
     * pop rethrows the same fault instead of reading on through the rest of the window.
     */
    @ParameterizedTest(name = "inOrder={0}")
    @ValueSource(booleans = {false, true})
    void aWindowOverTheRingsEndAndTheIndexWrapFaultsExactlyAtABadHead(boolean inOrder) throws Exception {
        for (int i = 0; i < SIZE; i++) desc(i, BUF + 64L * i, 64);
        SplitVirtqueue q = queue(inOrder);
        DescriptorChain chain = q.newChain();
        for (int i = 0; i < 0x1_0000 - 3; i++) {  // the next entry is at position 65533: slot 5
            offerBatch(i % SIZE);
            roundTrip(q, chain, i % SIZE);
        }
        offerBatch(1, 2, 3, 4, 5);              // slots 5, 6, 7, 0, 1; the index wraps to 2
        for (int h = 1; h <= 5; h++) {
            assertThat(q.pop(chain)).isTrue();
            assertThat(chain.head()).isEqualTo(h);
        }
        assertThat(q.pop(chain)).as("the window ended at the published index").isFalse();
        for (int h = 1; h <= 5; h++) q.pushUsed(h, 0);
        q.publishUsed();

        offerBatch(6, 7, SIZE + 1, 0);          // slots 2..5, positions 2..5: a bad head third
        assertNthPopStops(q, 2, Reason.DESC_INDEX_OUT_OF_RANGE);
    }

    /**
     * Entries the driver publishes while a window is being taken wait for the next acquire, which checks the
     * index again: a jump past the ring published mid-window stops the queue only after the window's buffers
     * (which were published and checked) have been taken.
     */
    @ParameterizedTest(name = "inOrder={0}")
    @ValueSource(booleans = {false, true})
    void entriesPublishedMidWindowAreTakenAfterItWithTheirIndexChecked(boolean inOrder) throws Exception {
        for (int i = 0; i < 6; i++) desc(i, BUF + 64L * i, 64);
        SplitVirtqueue q = queue(inOrder);
        DescriptorChain chain = q.newChain();
        offerBatch(0, 1, 2);
        assertThat(q.pop(chain)).isTrue();       // window: 0, 1, 2
        offerBatch(3, 4);                        // published mid-window
        for (int h = 1; h <= 4; h++) {
            assertThat(q.pop(chain)).isTrue();
            assertThat(chain.head()).isEqualTo(h);
        }
        assertThat(q.pop(chain)).isFalse();
        offerBatch(5);
        assertThat(q.pop(chain)).isTrue();       // window: 5
        availIdx = (availIdx + SIZE + 1) & 0xffff;   // then an index past the ring
        seg.set(SplitRing.U16, AVAIL - G + AVAIL_IDX, (short) availIdx);
        assertThatThrownBy(() -> q.pop(chain)).isInstanceOf(QueueFault.class)
                .satisfies(e -> assertThat(((QueueFault) e).reason()).isEqualTo(Reason.AVAIL_INDEX_JUMP));
        assertThat(q.inFlightCount()).isEqualTo(6);
    }

    /**
     * IN_ORDER tells a head in flight by where it was last popped (main: the position and the head popped there;
     * tried in cpumsg4: a 64-bit pop sequence number). An undone pop gives its place to the next pop, so the
     * undone head must not keep it: if the driver (against the rules) rewrote the entry, the next pop is another
     * head, and the undone one, offered later, is not in flight.
     */
    @Test
    void inOrderAnUndonePopsHeadIsNotInFlightWhenAnotherHeadTakesItsPlace() throws Exception {
        desc(0, BUF, 64);
        desc(1, BUF + 64, 64);
        SplitVirtqueue q = queue(true);
        DescriptorChain chain = q.newChain();
        offerBatch(0);
        assertThat(q.pop(chain)).isTrue();
        q.unpop(0);
        seg.set(SplitRing.U16, AVAIL - G + availEntryOffset(0), (short) 1);   // the entry now says 1
        assertThat(q.pop(chain)).isTrue();
        assertThat(chain.head()).isEqualTo(1);
        offerBatch(0);
        assertThat(q.pop(chain)).as("head 0 is not in flight").isTrue();
        assertThat(chain.head()).isZero();
        assertThat(q.inFlightCount()).isEqualTo(2);
        q.pushUsed(1, 0);
        q.pushUsed(0, 0);
        assertThat(q.isStopped()).isFalse();
        assertThat(q.buffersPopped()).isEqualTo(2);
    }

    /**
     * An IN_ORDER queue takes the next descriptor in table order as its guess for the next head (so that its loads
     * need not wait for the entry's). A driver that offers heads out of that order, a chain, an undone pop and a
     * read-ahead in between must still get exactly the heads its entries name, each with its own descriptor.
     */
    @Test
    void inOrderHeadsOutOfTableOrderArePoppedAsTheirEntriesSayNotAsGuessed() throws Exception {
        for (int i = 0; i < SIZE; i++) desc(i, BUF + 0x100L * i, 16 + i);
        seg.set(SplitRing.U16, DESC - G + descOffset(4) + DESC_FLAGS, (short) DESC_F_NEXT);   // 4 -> 7: a chain
        seg.set(SplitRing.U16, DESC - G + descOffset(4) + DESC_NEXT, (short) 7);
        SplitVirtqueue q = queue(true);
        DescriptorChain chain = q.newChain();
        int[] heads = {0, 1, 5, 2, 3, 4, 6};          // after 1 the guess is 2; after 5, 6; after 2, 3; after 4 (a chain) none
        offerBatch(heads);
        q.touchAhead(SIZE, 0);                         // a hint on the same guesses: it must change no pop
        for (int k = 0; k < heads.length; k++) {
            int h = heads[k];
            assertThat(q.pop(chain)).isTrue();
            assertThat(chain.head()).as("pop " + k).isEqualTo(h);
            assertThat(chain.address(0)).as("pop " + k).isEqualTo(BUF + 0x100L * h);
            assertThat(chain.length(0)).as("pop " + k).isEqualTo(16 + h);
            if (h == 4) assertThat(chain.count()).as("the chain 4 -> 7").isEqualTo(2);
            if (h == 5) {                              // undone and taken again: the same head, not its guess
                q.unpop(5);
                assertThat(q.pop(chain)).isTrue();
                assertThat(chain.head()).isEqualTo(5);
            }
        }
        assertThat(q.inFlightCount()).isEqualTo(heads.length);
        for (int h : heads) q.pushUsed(h, 0);
        assertThat(q.isStopped()).isFalse();
    }

    /** The guessed head (the one after the last pop) is checked like any other: offered while in flight, it stops the queue. */
    @Test
    void inOrderTheGuessedHeadOfferedWhileInFlightStops() throws Exception {
        for (int i = 0; i < SIZE; i++) desc(i, BUF + 0x100L * i, 64);
        SplitVirtqueue q = queue(true);
        DescriptorChain chain = q.newChain();
        offerBatch(0, 1, 2, 3, 4, 5, 6, 7);
        for (int i = 0; i < SIZE; i++) assertThat(q.pop(chain)).isTrue();
        q.pushUsed(0, 0);
        q.publishUsed();
        offerBatch(0);                                 // 0 is free again and is the guess: taken
        assertThat(q.pop(chain)).isTrue();
        assertThat(chain.head()).isZero();
        offerBatch(1);                                 // 1 is the guess, and still in flight
        assertNthPopStops(q, 0, Reason.BAD_DESCRIPTOR);
    }

    /**
     * {@link DescriptorChain#hostSegment}/{@link DescriptorChain#hostOffset} (what devices read frames through) are
     * kept per descriptor and recomputed only when its region changes: buffers alternating between memory FFM may
     * close (a memfd this test maps) and global-scope memory (read at host addresses), a chain over both, and a
     * single buffer after it must each read their own bytes, the same as {@code segment}/{@code offset} do.
     */
    @Test
    void hostViewsFollowEachDescriptorsRegion() throws Exception {
        long g3 = 0x80_0000L;
        MemorySegment global = java.lang.foreign.Arena.global().allocate(MEM, 8);   // direct: read through HostMemory.ALL
        memory = GuestMemory.of(new MemoryRegion(G, MEM, seg), new MemoryRegion(g3, MEM, global));
        long[] addrs = {BUF, g3 + 0x100, BUF + 0x40, g3 + 0x200, BUF + 0x80};
        for (int i = 0; i < addrs.length; i++) {
            desc(i, addrs[i], 8);
            MemoryRegion r = memory.region(addrs[i], 8);
            r.segment().set(ValueLayout.JAVA_LONG_UNALIGNED, addrs[i] - r.guestAddress(), 0x1111L * (i + 1));
        }
        seg.set(SplitRing.U16, DESC - G + descOffset(2) + DESC_FLAGS, (short) DESC_F_NEXT);   // 2 -> 3: BUF, then global
        seg.set(SplitRing.U16, DESC - G + descOffset(2) + DESC_NEXT, (short) 3);
        offerBatch(0, 1, 2, 4);
        SplitVirtqueue q = queue(true);
        DescriptorChain chain = q.newChain();
        int[][] expected = {{0}, {1}, {2, 3}, {4}};    // descriptors of each pop
        for (int[] pop : expected) {
            assertThat(q.pop(chain)).isTrue();
            assertThat(chain.count()).isEqualTo(pop.length);
            for (int k = 0; k < pop.length; k++) {
                long want = 0x1111L * (pop[k] + 1);
                assertThat(chain.segment(k).get(ValueLayout.JAVA_LONG_UNALIGNED, chain.offset(k))).isEqualTo(want);
                assertThat(chain.hostSegment(k).get(ValueLayout.JAVA_LONG_UNALIGNED, chain.hostOffset(k)))
                        .as("pop of head %d, descriptor %d", pop[0], k).isEqualTo(want);
                assertThat(chain.hostSegment(k)).isSameAs(chain.segment(k) == seg ? seg : HostMemory.ALL);
            }
        }
    }

    /**
     * A new IN_ORDER queue guesses head 0 for its first pop, and its chains start in the memory's first region (so that
     * a session's first pop takes the same branches as every later one in code the JIT compiled for another session).
     * Both are only guesses: a driver whose first buffer is head 3, in the second region, gets exactly that, and the
     * chain's views follow it; so does a read-ahead on those guesses.
     */
    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void aNewQueuesFirstPopTakesTheHeadAndRegionItsEntryNamesNotTheGuessedOnes(boolean readAhead) throws Exception {
        long g3 = 0x80_0000L;
        MemorySegment global = java.lang.foreign.Arena.global().allocate(MEM, 8);
        memory = GuestMemory.of(new MemoryRegion(G, MEM, seg), new MemoryRegion(g3, MEM, global));
        for (int i = 0; i < SIZE; i++) {
            desc(i, g3 + 0x100L * i, 8);
            global.set(ValueLayout.JAVA_LONG_UNALIGNED, 0x100L * i, 0x2222L * (i + 1));
        }
        SplitVirtqueue q = queue(true);
        DescriptorChain chain = q.newChain();
        offerBatch(3, 4);
        if (readAhead) q.touchAhead(SIZE, 0);
        for (int h : new int[] {3, 4}) {
            assertThat(q.pop(chain)).isTrue();
            assertThat(chain.head()).isEqualTo(h);
            assertThat(chain.address(0)).isEqualTo(g3 + 0x100L * h);
            assertThat(chain.segment(0)).isSameAs(global);
            assertThat(chain.hostSegment(0).get(ValueLayout.JAVA_LONG_UNALIGNED, chain.hostOffset(0))).isEqualTo(0x2222L * (h + 1));
        }
        q.pushUsed(3, 0);
        q.pushUsed(4, 0);
        assertThat(q.isStopped()).isFalse();
    }

    // ---------------------------------------------------------------- helpers

    private static void roundTrip(SplitVirtqueue q, DescriptorChain chain, int head) throws QueueFault {
        assertThat(q.pop(chain)).isTrue();
        assertThat(chain.head()).isEqualTo(head);
        q.pushUsed(head, 0);
        q.publishUsed();
    }

    private SplitVirtqueue queue(boolean inOrder) throws QueueFault {
        return SplitVirtqueue.create(0, SIZE, DESC, AVAIL, USED, memory, false, false, inOrder, Notifier.NONE);
    }

    private void desc(int i, long addr, int len) {
        long off = DESC - G + descOffset(i);
        seg.set(SplitRing.U64_UNALIGNED, off + DESC_ADDR, addr);
        seg.set(SplitRing.U32, off + DESC_LEN, len);
        seg.set(SplitRing.U16, off + DESC_FLAGS, (short) 0);
        seg.set(SplitRing.U16, off + DESC_NEXT, (short) 0);
    }

    /** Puts the heads on the available ring and publishes the index once, as a driver's batch. */
    private void offerBatch(int... heads) {
        for (int h : heads) {
            seg.set(SplitRing.U16, AVAIL - G + availEntryOffset(availIdx % SIZE), (short) h);
            availIdx = (availIdx + 1) & 0xffff;
        }
        seg.set(SplitRing.U16, AVAIL - G + AVAIL_IDX, (short) availIdx);
    }

    /**
     * Reading ahead skips the bytes its caller will not read (a header the driver's features make meaningless) and
     * reads the line after them, and it reads a buffer once: a second call reads only what the driver made available
     * since, and {@code readAheadUsedUp} says when every buffer read ahead has been taken. What it read is seen in its
     * result, the bytes folded in (each descriptor's len/flags/next word, then the first and last byte it touched).
     */
    @ParameterizedTest(name = "inOrder={0}")
    @ValueSource(booleans = {false, true})
    void readingAheadSkipsWhatTheCallerIgnoresAndReadsEachBufferOnce(boolean inOrder) throws Exception {
        int hdr = 12, len = hdr + 64;
        for (int i = 0; i < 4; i++) {
            long b = BUF + 256L * i;
            desc(i, b, len);
            for (int k = 0; k < len; k++) seg.set(ValueLayout.JAVA_BYTE, b - G + k, (byte) (k < hdr ? 100 : 1));
            seg.set(ValueLayout.JAVA_BYTE, b - G + hdr, (byte) (10 + i));         // the frame's first byte
            seg.set(ValueLayout.JAVA_BYTE, b - G + hdr + 63, (byte) (20 + i));    // its 64th
        }
        offerBatch(0);
        SplitVirtqueue q = queue(inOrder);
        DescriptorChain chain = q.newChain();
        assertThat(q.pop(chain)).isTrue();                            // the region is known from here on
        offerBatch(1, 2);
        assertThat(q.readAheadUsedUp()).as("nothing read ahead yet").isTrue();
        assertThat(q.touchAhead(32, hdr)).as("buffers 1 and 2, past their headers")
                .isEqualTo(2L * len + (11 + 21) + (12 + 22));
        assertThat(q.readAheadUsedUp()).isFalse();
        assertThat(q.touchAhead(32, hdr)).as("nothing new: nothing read again").isZero();
        offerBatch(3);
        assertThat(q.touchAhead(32, hdr)).as("only the one made available since").isEqualTo(len + 13 + 23);
        for (int i = 1; i <= 2; i++) {
            assertThat(q.pop(chain)).isTrue();
            assertThat(q.readAheadUsedUp()).isFalse();
        }
        assertThat(q.pop(chain)).isTrue();
        assertThat(q.readAheadUsedUp()).as("every buffer read ahead taken").isTrue();
        offerBatch(0);
        assertThat(q.touchAhead(32, 0)).as("no skip: the header's first byte, the 64th of the buffer")
                .isEqualTo(len + 100 + 1);
    }

    /**
     * Reading ahead is a hint: over a batch holding every kind of bad value a driver can write (a head past the
     * ring, a chain, an indirect table the queue did not negotiate, an address in the hole, a length of zero) it
     * throws nothing and takes nothing, and the pops after it check each buffer exactly as without it: the good
     * one first, then the bad head stops the queue. An index published past the ring is not read through, and a
     * stopped queue reads nothing.
     */
    @ParameterizedTest(name = "inOrder={0}")
    @ValueSource(booleans = {false, true})
    void readingAheadChecksNothingTakesNothingAndLeavesEveryCheckToPop(boolean inOrder) throws Exception {
        desc(0, BUF, 64);
        desc(2, G + MEM + 0x100, 64);                                  // in the hole
        desc(3, BUF + 64, 64);
        seg.set(SplitRing.U16, DESC - G + descOffset(3) + DESC_FLAGS, (short) DESC_F_NEXT);   // a chain
        desc(4, BUF + 128, 64);
        seg.set(SplitRing.U16, DESC - G + descOffset(4) + DESC_FLAGS, (short) DESC_F_INDIRECT);
        desc(5, BUF + 192, 0);
        offerBatch(0, SIZE + 7, 2, 3, 4, 5);
        SplitVirtqueue q = queue(inOrder);
        q.touchAhead(32, 0);                                           // no region known yet: descriptors only
        DescriptorChain chain = q.newChain();
        assertThat(q.pop(chain)).isTrue();
        assertThat(chain.head()).isZero();
        q.touchAhead(32, 0);                                           // now with the region known
        q.touchAhead(Integer.MAX_VALUE, 0);
        assertThat(q.nextAvail()).as("nothing taken").isEqualTo(1);
        assertThat(q.isStopped()).isFalse();
        assertThatThrownBy(() -> q.pop(chain)).isInstanceOf(QueueFault.class)
                .satisfies(e -> assertThat(((QueueFault) e).reason()).isEqualTo(Reason.DESC_INDEX_OUT_OF_RANGE));
        assertThat(q.touchAhead(32, 0)).as("a stopped queue reads nothing").isZero();

        SplitVirtqueue q2 = queue(inOrder);
        availIdx = (availIdx + SIZE + 1) & 0xffff;                      // an index past the ring
        seg.set(SplitRing.U16, AVAIL - G + AVAIL_IDX, (short) availIdx);
        assertThat(q2.touchAhead(32, 0)).as("an index past the ring is not read through").isZero();
        assertThatThrownBy(() -> q2.pop(q2.newChain())).isInstanceOf(QueueFault.class)
                .satisfies(e -> assertThat(((QueueFault) e).reason()).isEqualTo(Reason.AVAIL_INDEX_JUMP));
    }

    /**
     * Used elements reach the ring when the used index is published, not at each push (a store into a line the
     * driver's core reads held back every later store of the buffer's work), all of them before that index, also
     * beyond the 256 the queue holds (the rest written at once), with IN_ORDER (whose elements are one per run of
     * whole-length buffers, here one per buffer: every length differs) and without.
     */
    @ParameterizedTest(name = "inOrder={0}")
    @ValueSource(booleans = {false, true})
    void usedElementsAreWrittenWhenTheIndexIsPublishedAllOfThemBeforeIt(boolean inOrder) throws Exception {
        int size = 512, n = 300;
        long desc = G + 0x1000, avail = G + 0x3000, used = G + 0x4000, buf = G + 0x8000;
        for (int i = 0; i < size; i++) {
            long off = desc - G + descOffset(i);
            seg.set(SplitRing.U64_UNALIGNED, off + DESC_ADDR, buf + 16L * (i % 400));
            seg.set(SplitRing.U32, off + DESC_LEN, 16);
            seg.set(SplitRing.U16, off + DESC_FLAGS, (short) DESC_F_WRITE);
        }
        for (int k = 0; k < n; k++) seg.set(SplitRing.U16, avail - G + availEntryOffset(k), (short) k);
        seg.set(SplitRing.U16, avail - G + AVAIL_IDX, (short) n);
        SplitVirtqueue q = SplitVirtqueue.create(0, size, desc, avail, used, memory, false, false, inOrder, Notifier.NONE);
        DescriptorChain chain = q.newChain();
        for (int k = 0; k < n; k++) {
            assertThat(q.pop(chain)).isTrue();
            q.pushUsed(chain.head(), 1 + k % 15);                          // never the whole 16 bytes
        }
        long written = 0;
        for (int k = 0; k < n; k++) if (seg.get(SplitRing.U64_UNALIGNED, used - G + usedElemOffset(k)) != 0) written++;
        assertThat(written).as("elements in the ring before the index: those past the 256 held").isEqualTo(n - 256);
        assertThat(seg.get(SplitRing.U16, used - G + USED_IDX)).isZero();
        q.publishUsed();
        assertThat(seg.get(SplitRing.U16, used - G + USED_IDX)).isEqualTo((short) n);
        for (int k = 0; k < n; k++) {
            long e = seg.get(SplitRing.U64_UNALIGNED, used - G + usedElemOffset(k));
            assertThat((int) e).as("id of used slot " + k).isEqualTo(k);
            assertThat((int) (e >>> 32)).as("len of used slot " + k).isEqualTo(1 + k % 15);
        }
    }

    /** Pops {@code good} buffers of the batch, then the next pop stops the queue with {@code reason}. */
    private static void assertNthPopStops(SplitVirtqueue q, int good, Reason reason) throws QueueFault {
        DescriptorChain chain = q.newChain();
        for (int i = 0; i < good; i++) assertThat(q.pop(chain)).as("pop " + i).isTrue();
        assertThatThrownBy(() -> q.pop(chain)).isInstanceOf(QueueFault.class)
                .satisfies(e -> assertThat(((QueueFault) e).reason()).as(e.getMessage()).isEqualTo(reason));
        assertThat(q.isStopped()).isTrue();
        assertThatThrownBy(() -> q.pop(chain)).as("later pops rethrow, they read nothing").isSameAs(q.fault());
    }
}
