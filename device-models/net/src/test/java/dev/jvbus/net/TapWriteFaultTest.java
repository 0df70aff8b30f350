package dev.jvbus.net;

import static dev.jvbus.core.testing.TestFrames.localMac;
import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.core.sys.Errno;
import dev.jvbus.core.testing.TestNetns;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayDeque;
import java.util.List;
import java.util.Queue;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Fault injection (issue 10): writes to a TAP that fail. The kernel's EIO is real (the link set down); EAGAIN
 * and ENOBUFS, which only a loaded kernel gives, are injected in place of the write. Each failed write is a
 * frame dropped under its reason and counted, the port and its sender go on, and every other frame reaches
 * the kernel (its own receive counter says so).
 */
class TapWriteFaultTest {
    static final byte[] SENDER = localMac(0x0031);
    static final Pattern RX_PACKETS = Pattern.compile("\"rx\":\\{\"bytes\":\\d+,\"packets\":(\\d+)");
    @RegisterExtension
    static final TestNetns.PerClass ns = new TestNetns.PerClass();

    @Test
    void failedWritesAreDroppedUnderTheirReasonAndEveryOtherFrameReachesTheKernel() {
        L2Switch sw = new L2Switch("tap-faults");
        SwitchPort sender = sw.join(new NetPort() {
            @Override public String name() { return "sender"; }
            @Override public DropReason deliver(MemorySegment frame, long offset, int length) { return null; }
        });
        try (Arena arena = Arena.ofConfined(); TapPort tap = TapPort.create(sw, "jvfault0", ns.namespace(), true)) {
            MemorySegment frame = arena.allocate(60);
            for (int i = 0; i < 6; i++) frame.set(ValueLayout.JAVA_BYTE, i, (byte) 0xff);
            MemorySegment.copy(SENDER, 0, frame, ValueLayout.JAVA_BYTE, 6, 6);
            frame.set(ValueLayout.JAVA_BYTE, 12, (byte) 0x88);
            frame.set(ValueLayout.JAVA_BYTE, 13, (byte) 0xb5);
            long kernelBefore = kernelRxPackets("jvfault0");

            Queue<Integer> errors = new ArrayDeque<>(List.of(0, 0, Errno.EAGAIN, Errno.EAGAIN, Errno.EAGAIN, Errno.ENOBUFS, Errno.ENOBUFS, 0, 0, 0));
            tap.writeFault = () -> errors.isEmpty() ? 0 : errors.poll();
            for (int i = 0; i < 10; i++) sender.send(frame, 0, 60);

            TapPort.TapStats s = tap.stats();
            assertThat(s.toKernelFrames()).as("written").isEqualTo(5);
            assertThat(s.wouldBlock()).as("EAGAIN").isEqualTo(3);
            assertThat(s.writeErrors()).as("ENOBUFS").isEqualTo(2);
            assertThat(tap.switchPort().stats().dropped(DropReason.BACKEND_BUSY)).isEqualTo(3);
            assertThat(tap.switchPort().stats().dropped(DropReason.BACKEND_ERROR)).isEqualTo(2);
            assertThat(kernelRxPackets("jvfault0") - kernelBefore).as("what the kernel received from the TAP").isEqualTo(5);

            ns.ip("link", "set", "jvfault0", "down");   // the kernel's own refusal: EIO
            for (int i = 0; i < 2; i++) sender.send(frame, 0, 60);
            assertThat(tap.stats().linkDown()).isEqualTo(2);
            assertThat(tap.switchPort().stats().dropped(DropReason.PORT_DOWN)).isEqualTo(2);

            ns.ip("link", "set", "jvfault0", "up");
            sender.send(frame, 0, 60);
            assertThat(tap.stats().toKernelFrames()).as("the port goes on once the kernel takes frames again").isEqualTo(6);
            assertThat(tap.readerAlive()).isTrue();
            assertThat(sender.stats().dropped()).as("nothing refused at the sender's own port").isZero();
        } finally {
            sender.leave();
        }
    }

    /** The kernel's count of frames the interface received (written to the TAP by us). */
    private static long kernelRxPackets(String ifname) {
        Matcher m = RX_PACKETS.matcher(ns.ip("-j", "-s", "link", "show", "dev", ifname));
        if (!m.find()) throw new AssertionError("no rx packet count for " + ifname);
        return Long.parseLong(m.group(1));
    }
}
