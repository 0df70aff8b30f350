package dev.jvbus.model.virtionet;

import static dev.jvbus.model.virtionet.Frames.frame;
import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.core.bus.Container;
import dev.jvbus.core.memory.DirtyLog;
import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.memory.MemoryRegion;
import dev.jvbus.core.sys.HostileFds;
import dev.jvbus.core.sys.MappingRule;
import dev.jvbus.core.sys.Memfd;
import dev.jvbus.core.sys.OwnedFd;
import dev.jvbus.net.DropReason;
import dev.jvbus.net.FrameOffload;
import dev.jvbus.net.MacAddress;
import dev.jvbus.net.NetPort;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Small frames that stay in the sender's buffer are copied into the receiver's rx buffers at the end of the sender's
 * run ({@link RxCopies}), not as each lands; what matters is when their bytes are read: never after the sender may
 * have reused its buffer. Each test overwrites the sender's buffer at the first moment the sender could, and the
 * receiver must still get the frame as it was sent.
 */
class RxCopiesTest {
    static final long G = 0x10_0000L, PAGE = 1 << DirtyLog.PAGE_SHIFT;
    static final Duration WAIT = Duration.ofSeconds(10);
    static final long SENDER = MacAddress.parse("02:00:00:00:00:99");

    final Container container = VirtioNetExchangeTest.newContainer();
    GuestNet guest;
    OwnedFd frontEndsFile;

    /** A started virtio-net device with 256 rx buffers posted, as the port a sender delivers to. */
    private VirtioNetDevice receiver() throws Exception {
        guest = new GuestNet(container.addDevice(VirtioNetModel.TYPE, -1L, Map.of()), 256).negotiate(-1L).start();
        guest.postRx(256);
        return (VirtioNetDevice) guest.a.function();
    }

    /** The sender's tx buffer holding {@code frame} at offset 0 (native, as a ring's buffer). */
    private static MemorySegment inSendersBuffer(byte[] frame) {
        MemorySegment buffer = Arena.ofAuto().allocate(256, 8);
        MemorySegment.copy(frame, 0, buffer, ValueLayout.JAVA_BYTE, 0, frame.length);
        return buffer;
    }

    @AfterEach
    void close() {
        if (guest != null) guest.close();
        if (frontEndsFile != null) frontEndsFile.close();
    }

    @Test
    void heldCopiesAreMadeTogetherAndMarkedDirtyAndStagedOnesSurviveTheSendersBuffer() {
        Arena arena = Arena.ofAuto();
        MemorySegment mem = arena.allocate(4 * PAGE, 8), sender = arena.allocate(1024, 8);
        GuestMemory memory = GuestMemory.of(new MemoryRegion(G, 4 * PAGE, mem));
        long pages = (G + 4 * PAGE) >> DirtyLog.PAGE_SHIFT;
        DirtyLog log = new DirtyLog(arena.allocate((pages + 63) / 64 * 8, 8));
        memory.setDirtyLog(log);
        for (int i = 0; i < 1024; i++) sender.set(ValueLayout.JAVA_BYTE, i, (byte) i);

        RxCopies c = new RxCopies();
        assertThat(c.hold(sender, 0, mem, 100, G + 100, 60)).isTrue();
        assertThat(c.hold(sender, 256, mem, PAGE + 100, G + PAGE + 100, RxCopies.MAX_BYTES)).isTrue();
        assertThat(c.hold(sender, 0, mem, 2 * PAGE, G + 2 * PAGE, RxCopies.MAX_BYTES + 1)).as("too large: copied at once").isFalse();
        assertThat(mem.get(ValueLayout.JAVA_BYTE, 100)).as("nothing copied while held").isZero();
        assertThat(log.pagesMarked()).isZero();

        c.stage();                                                    // the sender's run ended with the gate closed
        sender.fill((byte) 0xee);                                     // and its driver reuses the buffers
        c.copyAll(memory);
        for (int i = 0; i < 60; i++) assertThat(mem.get(ValueLayout.JAVA_BYTE, 100 + i)).isEqualTo((byte) i);
        for (int i = 0; i < RxCopies.MAX_BYTES; i++) assertThat(mem.get(ValueLayout.JAVA_BYTE, PAGE + 100 + i)).isEqualTo((byte) (256 + i));
        assertThat(log.isDirty(G + 100)).isTrue();
        assertThat(log.isDirty(G + PAGE + 100)).isTrue();
        assertThat(log.pagesMarked()).isEqualTo(2);
        assertThat(c.isEmpty()).isTrue();

        // Held from the sender again after staging: read from where the sender has it now.
        assertThat(c.hold(sender, 0, mem, 3 * PAGE, G + 3 * PAGE, 16)).isTrue();
        c.copyAll(memory);
        assertThat(mem.get(ValueLayout.JAVA_BYTE, 3 * PAGE)).isEqualTo((byte) 0xee);

        for (int i = 0; i < RxCopies.CAPACITY; i++) assertThat(c.hold(sender, 0, mem, 0, G, 8)).isTrue();
        assertThat(c.hold(sender, 0, mem, 0, G, 8)).as("full: copied at once").isFalse();
        c.drop();
        assertThat(c.isEmpty()).isTrue();
    }

    @Test
    void aStayingFrameIsCopiedByTheEndOfTheSendersRunAndPublishedAtItsFlush() throws Exception {
        VirtioNetDevice port = receiver();
        byte[] sent = frame(guest.mac(), SENDER, 60, 7);
        MemorySegment buffer = inSendersBuffer(sent);

        assertThat(port.deliverStaying(buffer, 0, sent.length, FrameOffload.NONE, NetPort.NO_ORIGIN)).isNull();
        assertThat(guest.poll()).as("not published before the flush").isNull();
        port.endRun();                                       // the sender goes on to another port
        buffer.fill((byte) 0xee);                            // from here its buffer may change (here: before its flush)
        port.flush();
        List<GuestNet.Rx> got = guest.receive(1, WAIT);
        assertThat(got).hasSize(1);
        assertThat(got.get(0).frame()).as("the frame as sent, copied at the end of the run").isEqualTo(sent);

        // A frame that does not stay (the sender reuses its buffer for the next frame) is copied as it lands.
        MemorySegment.copy(sent, 0, buffer, ValueLayout.JAVA_BYTE, 0, sent.length);
        assertThat(port.deliver(buffer, 0, sent.length, FrameOffload.NONE, NetPort.NO_ORIGIN)).isNull();
        buffer.fill((byte) 0xee);
        port.flush();
        got = guest.receive(1, WAIT);
        assertThat(got).hasSize(1);
        assertThat(got.get(0).frame()).isEqualTo(sent);
    }

    @Test
    void framesTheControlPlanePublishesAreCopiedFromTheSendersBufferBeforeItsFlushCanReturnIt() throws Exception {
        VirtioNetDevice port = receiver();
        byte[] first = frame(guest.mac(), SENDER, 64, 1);
        byte[] second = frame(guest.mac(), SENDER, 200, 2);
        MemorySegment buffer = Arena.ofAuto().allocate(512, 8);
        MemorySegment.copy(first, 0, buffer, ValueLayout.JAVA_BYTE, 0, first.length);
        MemorySegment.copy(second, 0, buffer, ValueLayout.JAVA_BYTE, 256, second.length);

        assertThat(port.deliverStaying(buffer, 0, first.length, FrameOffload.NONE, NetPort.NO_ORIGIN)).isNull();
        assertThat(port.deliverStaying(buffer, 256, second.length, FrameOffload.NONE, NetPort.NO_ORIGIN)).isNull();
        guest.device.pause();                                // the gate closes; what the batch left pending is published
        port.endRun();                                       // the sender's run ends while the gate is closed
        port.flush();                                        // and its flush finds the gate closed: its buffers go back
        buffer.fill((byte) 0xee);
        guest.device.resume();
        List<GuestNet.Rx> got = guest.receive(2, WAIT);
        assertThat(got).hasSize(2);
        assertThat(got.get(0).frame()).isEqualTo(first);
        assertThat(got.get(1).frame()).isEqualTo(second);
    }

    /**
     * The receiver's front-end cuts its rx buffers off (truncates its memory file) after the end of the sender's run,
     * whose copies landed, and before the sender's flush, which writes the frames' headers there: the publication
     * faults, the device needs a reset, and every frame it had taken is lost, counted once on the device as a ring
     * fault and returned by the flush, so that the switch counts them at the receiver's port too.
     */
    @Test
    void framesWhosePublicationFaultsAreCountedOnceAndReturnedByTheFlush() throws Exception {
        frontEndsFile = HostileFds.memfd("front-end", GuestNet.MEMORY, 0);
        Memfd memory = Memfd.adopt(OwnedFd.duplicate(frontEndsFile.number()), 0, GuestNet.MEMORY, MappingRule.SHARED_FILE);
        // No control queue: its ring lies past the rx buffers (GuestNet's layout), so the cut would take it too, and a
        // control worker that looked at it could fault the device first, for its own reason.
        long features = -1L;
        for (var f : List.of(VirtioNetFeatures.CTRL_VQ, VirtioNetFeatures.CTRL_RX, VirtioNetFeatures.CTRL_RX_EXTRA, VirtioNetFeatures.CTRL_VLAN,
                VirtioNetFeatures.CTRL_MAC_ADDR, VirtioNetFeatures.CTRL_GUEST_OFFLOADS, VirtioNetFeatures.GUEST_ANNOUNCE, VirtioNetFeatures.MQ))
            features &= ~f.mask();   // and what requires it
        guest = new GuestNet(container.addDevice(VirtioNetModel.TYPE, -1L, Map.of()), 256, memory, true).negotiate(features).start();
        guest.postRx(256);
        VirtioNetDevice port = (VirtioNetDevice) guest.a.function();
        byte[] sent = frame(guest.mac(), SENDER, 60, 3);
        MemorySegment buffer = inSendersBuffer(sent);

        for (int i = 0; i < 3; i++) assertThat(port.deliverStaying(buffer, 0, sent.length, FrameOffload.NONE, NetPort.NO_ORIGIN)).isNull();
        assertThat(port.endRun()).as("the copies land: the buffers are still there").isZero();
        assertThat(HostileFds.truncate(frontEndsFile.number(), GuestNet.RX_BUFFERS)).as("the front-end cuts its rx buffers off").isZero();

        assertThat(port.flush()).as("the frames the faulted publication lost").isEqualTo(3);
        long deadline = System.nanoTime() + WAIT.toNanos();   // reported on a thread of its own (Device.Run#needsReset)
        while (guest.device.needsResetReason().isEmpty() && System.nanoTime() < deadline) Thread.sleep(1);
        assertThat(guest.device.needsResetReason()).hasValueSatisfying(r -> assertThat(r).contains("memory faulted"));
        assertThat(port.stats().rxDrops()).as("counted once, on the device").containsEntry(DropReason.RING_FAULT, 3L);

        // A later frame is refused as it comes (the caller counts that drop), and no frame is counted lost twice. It is
        // refused as a ring fault while the broken ring is still up, as port down once the reset's report stopped it:
        // which one depends on the reporting thread (a hog run saw both), so the expected count follows the answer.
        DropReason later = port.deliver(buffer, 0, sent.length, FrameOffload.NONE, NetPort.NO_ORIGIN);
        assertThat(later).isIn(DropReason.RING_FAULT, DropReason.PORT_DOWN);
        assertThat(port.flush()).isZero();
        assertThat(port.stats().rxDrops().get(DropReason.RING_FAULT)).isEqualTo(later == DropReason.RING_FAULT ? 4L : 3L);
    }

    /**
     * The driver resets the device while a sender's batch has frames in its rx ring, unpublished: they go with the
     * ring, and are counted as dropped (the switch counted them handed over), not lost without a trace.
     */
    @Test
    void framesTakenAndNotPublishedWhenTheDriverResetsAreCountedAsDropped() throws Exception {
        VirtioNetDevice port = receiver();
        byte[] sent = frame(guest.mac(), SENDER, 60, 5);
        MemorySegment buffer = inSendersBuffer(sent);
        for (int i = 0; i < 2; i++) assertThat(port.deliverStaying(buffer, 0, sent.length, FrameOffload.NONE, NetPort.NO_ORIGIN)).isNull();
        assertThat(port.stats().rxDrops()).doesNotContainKey(DropReason.PORT_DOWN);

        guest.a.reset();                                      // the driver resets: its rings go, with what they held
        assertThat(port.endRun()).isZero();                   // the sender's run ends, its batch flushes: nothing to publish
        assertThat(port.flush()).isZero();
        assertThat(port.stats().rxDrops()).containsEntry(DropReason.PORT_DOWN, 2L);
        assertThat(guest.poll()).as("nothing published into the reset ring").isNull();
    }
}
