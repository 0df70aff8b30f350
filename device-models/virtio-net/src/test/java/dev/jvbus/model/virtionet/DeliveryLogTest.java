package dev.jvbus.model.virtionet;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.memory.GuestMemoryException;
import dev.jvbus.core.memory.MemoryRegion;
import dev.jvbus.core.sys.Memfd;
import dev.jvbus.net.MacAddress;
import dev.jvbus.net.NetPort;
import java.lang.management.ManagementFactory;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The receiver's delivery log (issue 10, restart without loss): what it says about a replayed frame, from the
 * bytes alone, as a restarted bus reads them back from the driver's memory.
 */
class DeliveryLogTest {
    static final long G = 0x10_0000L, LOG = G + 0x800;
    static final long A = MacAddress.parse("02:00:00:00:00:0a"), B = MacAddress.parse("02:00:00:00:00:0b");

    private final Memfd mem = Memfd.create("delivery-log", 1 << 16);
    private final GuestMemory memory = GuestMemory.of(new MemoryRegion(G, 1 << 16, mem.segment()));

    @AfterEach
    void close() {
        mem.close();
    }

    private static int replay(int position) {
        return NetPort.origin(position, true);
    }

    /** A frame from {@code mac} at {@code origin} logged on rx ring {@code ring} and published there ({@code usedAfter}). */
    private static void delivered(DeliveryLog log, long mac, int origin, int ring, int usedAfter) {
        log.beforePublish(mac, origin, ring, usedAfter);
        log.published();
    }

    /** The log as a restarted bus reads it back from the driver's memory, each rx ring at its used index {@code used[n]}. */
    private DeliveryLog resumed(int... used) throws GuestMemoryException {
        DeliveryLog log = DeliveryLog.at(memory, LOG);
        log.resume(used);
        return log;
    }

    @Test
    void aReplayIsSkippedUpToTheLastFrameDeliveredFromItsSenderAndNoFurther() throws Exception {
        DeliveryLog log = DeliveryLog.at(memory, LOG);
        log.clear();
        for (int p = 10; p <= 12; p++) {
            delivered(log, A, NetPort.origin(p, false), 0, p - 9);
        }
        assertThat(log.alreadyDelivered(A, replay(11))).isTrue();
        assertThat(log.alreadyDelivered(A, replay(12))).isTrue();
        assertThat(log.alreadyDelivered(A, replay(13))).as("the next frame is new").isFalse();
        assertThat(log.alreadyDelivered(A, NetPort.origin(12, false))).as("a frame not marked as a replay is always new").isFalse();
        assertThat(log.alreadyDelivered(B, replay(12))).as("another sender's positions are its own").isFalse();
        assertThat(log.alreadyDelivered(A, NetPort.NO_ORIGIN)).isFalse();
    }

    @Test
    void afterARestartTheReceiversUsedIndexSaysWhetherTheLastLoggedFrameWasPublished() throws Exception {
        DeliveryLog before = DeliveryLog.at(memory, LOG);
        before.clear();
        delivered(before, A, NetPort.origin(0xfffe, false), 0, 0xffff);   // positions and used indices wrap
        before.beforePublish(A, NetPort.origin(0xffff, false), 0, 0);        // the bus dies before publishing used index 0

        DeliveryLog unpublished = resumed(0xffff);
        assertThat(unpublished.alreadyDelivered(A, replay(0xfffe))).isTrue();
        assertThat(unpublished.alreadyDelivered(A, replay(0xffff))).as("logged, but its used index never reached the driver").isFalse();

        DeliveryLog published = resumed(0);
        assertThat(published.alreadyDelivered(A, replay(0xffff))).as("its used index was published").isTrue();
        assertThat(published.alreadyDelivered(A, replay(0))).isFalse();
    }

    @Test
    void aReplayFromASenderThatSetItsRingUpAfreshIsNewThoughItsPositionIsBehindItsOldRings() throws Exception {
        DeliveryLog log = DeliveryLog.at(memory, LOG);
        log.clear();
        delivered(log, A, NetPort.origin(5000, false), 0, 1);   // the sender's old ring got this far with us
        assertThat(log.alreadyDelivered(A, replay(3))).as("position 3 of its new ring").isFalse();
        assertThat(log.alreadyDelivered(A, replay(5000 - DeliveryLog.REPLAY_SPAN + 1))).as("within a ring's span: delivered").isTrue();
    }

    @Test
    void aNewDriversLogRemembersNothingOfTheLastOnes() throws Exception {
        DeliveryLog old = DeliveryLog.at(memory, LOG);
        old.clear();
        delivered(old, A, NetPort.origin(5, false), 0, 1);
        DeliveryLog fresh = DeliveryLog.at(memory, LOG);
        fresh.clear();
        fresh.resume(new int[] {1});
        assertThat(fresh.alreadyDelivered(A, replay(5))).isFalse();
    }

    @Test
    void moreSendersThanSlotsEvictTheOldestAndKeepTheRest() throws Exception {
        DeliveryLog log = DeliveryLog.at(memory, LOG);
        log.clear();
        for (int s = 1; s <= DeliveryLog.SLOTS + 1; s++) {
            delivered(log, s, NetPort.origin(100, false), 0, s);
        }
        DeliveryLog back = resumed(DeliveryLog.SLOTS + 1);
        assertThat(back.alreadyDelivered(1, replay(100))).as("evicted").isFalse();
        for (int s = 2; s <= DeliveryLog.SLOTS + 1; s++) assertThat(back.alreadyDelivered(s, replay(100))).as("sender " + s).isTrue();
    }

    @Test
    void withSeveralRxQueuesTheRingTheLastFrameWentToSaysWhetherItWasPublished() throws Exception {
        DeliveryLog before = DeliveryLog.at(memory, LOG);
        before.clear();
        delivered(before, A, NetPort.origin(10, false), 0, 1);   // on rx0, published
        before.beforePublish(A, NetPort.origin(11, false), 2, 7);   // on rx2: the bus dies before used index 7 is published

        DeliveryLog unpublished = resumed(1, 0, 6, 0);
        assertThat(unpublished.alreadyDelivered(A, replay(10))).isTrue();
        assertThat(unpublished.alreadyDelivered(A, replay(11))).as("rx2's used index never reached 7").isFalse();

        DeliveryLog published = resumed(0, 9, 7, 0);   // another ring's used index is no evidence; rx2's is
        assertThat(published.alreadyDelivered(A, replay(11))).as("rx2 published it").isTrue();

        DeliveryLog ringGone = resumed(1, 0, DeliveryLog.NOT_RUNNING, 0);
        assertThat(ringGone.alreadyDelivered(A, replay(11))).as("rx2 does not run: cannot tell, so delivered again").isFalse();
        assertThat(ringGone.alreadyDelivered(A, replay(10))).isTrue();
    }

    @Test
    void aRingSetUpAfreshWithinTheRunNoLongerDecidesForTheFramesLoggedOnIt() throws Exception {
        DeliveryLog log = DeliveryLog.at(memory, LOG);
        log.clear();
        delivered(log, A, NetPort.origin(10, false), 1, 1);
        delivered(log, A, NetPort.origin(11, false), 1, 2);
        log.ringStartedAfresh(1);   // rx1 reset: its used index starts over at 0
        DeliveryLog back = resumed(0, 0);
        assertThat(back.alreadyDelivered(A, replay(11))).as("published before the reset, whatever rx1's new used index").isTrue();
        assertThat(back.alreadyDelivered(A, replay(12))).isFalse();
    }

    @Test
    void eachTransmitQueueOfOneSenderHasPositionsOfItsOwn() throws Exception {
        DeliveryLog log = DeliveryLog.at(memory, LOG);
        log.clear();
        delivered(log, A, NetPort.origin(100, false, 0), 0, 1);
        delivered(log, A, NetPort.origin(5, false, 1), 1, 1);
        assertThat(log.alreadyDelivered(A, NetPort.origin(100, true, 0))).isTrue();
        assertThat(log.alreadyDelivered(A, NetPort.origin(101, true, 0))).as("tx0's next frame").isFalse();
        assertThat(log.alreadyDelivered(A, NetPort.origin(5, true, 1))).isTrue();
        assertThat(log.alreadyDelivered(A, NetPort.origin(6, true, 1))).as("tx1's next frame, though tx0 got to 100").isFalse();
        DeliveryLog back = resumed(1, 1);
        assertThat(back.alreadyDelivered(A, NetPort.origin(6, true, 1))).isFalse();
        assertThat(back.alreadyDelivered(A, NetPort.origin(100, true, 0))).isTrue();
    }

    @Test
    void aLogOutsideTheDriversMemoryOrUnalignedIsRefused() {
        assertThatThrownBy(() -> DeliveryLog.at(memory, G + (1 << 16) - 8)).isInstanceOf(GuestMemoryException.class);
        assertThatThrownBy(() -> DeliveryLog.at(memory, LOG + 4)).isInstanceOf(GuestMemoryException.class).hasMessageContaining("aligned");
    }

    @Test
    void loggingAFrameAllocatesNothing() throws Exception {
        DeliveryLog log = DeliveryLog.at(memory, LOG);
        log.clear();
        pump(log, 50_000);   // warm-up: let the JIT compile
        com.sun.management.ThreadMXBean t = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        long before = t.getCurrentThreadAllocatedBytes();
        pump(log, 200_000);
        assertThat(t.getCurrentThreadAllocatedBytes() - before).as("bytes allocated for 200 000 frames").isLessThan(16 * 1024);
    }

    private static void pump(DeliveryLog log, int frames) {
        for (int i = 0; i < frames; i++) {
            long mac = (i & 3) + 1;
            int origin = NetPort.origin(i, (i & 1) == 0);
            if (!log.alreadyDelivered(mac, origin)) {
                delivered(log, mac, origin, 0, i);
            }
        }
    }
}
