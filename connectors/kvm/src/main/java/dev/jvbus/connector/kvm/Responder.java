package dev.jvbus.connector.kvm;

import dev.jvbus.core.memory.GuestMemoryException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.Inet4Address;
import java.time.Duration;

/**
 * The bundled guest's responder mode ({@link GuestProgram.Mode#RESPONDER}): a host as small as one can be,
 * on a virtio-net device. It answers ARP for {@code ip} and ICMP echo requests to it until the micro-VM is
 * stopped, sleeping in WAIT while nothing arrives; so a person can {@code ping} a micro-VM through the
 * bus's switch from a TAP in a network namespace.
 */
public record Responder(long devid, Inet4Address ip) {
    /** Guest address of its counters, outside the device's window (guest/vbus-guest.c, RESPONDER_STATS). */
    static final long STATS = 0x300000L;

    /**
     * What the guest counted, read from its memory: guest-written numbers, shown, never trusted.
     *
     * @param frames      frames received
     * @param arpReplies  ARP requests for its address it answered
     * @param echoReplies ICMP echo requests it answered
     * @param ignored     frames that asked it nothing
     * @param txShort     requests it dropped for want of a free tx buffer
     */
    public record Counters(long frames, long arpReplies, long echoReplies, long ignored, long txShort) {}

    long[] words() {
        byte[] a = ip.getAddress();
        long v = (a[0] & 0xffL) << 24 | (a[1] & 0xffL) << 16 | (a[2] & 0xffL) << 8 | (a[3] & 0xffL);
        return new long[] {devid, v};
    }

    /** Writes the parameters and runs the guest until it is stopped ({@link MicroVm#close()}) or {@code timeout} passes. */
    public RunReport run(MicroVm vm, Duration timeout) {
        vm.writeParameters(words());
        return vm.run(GuestProgram.Mode.RESPONDER, GuestLayout.PARAMS, timeout);
    }

    /** The guest's counters now. */
    public static Counters counters(MicroVm vm) {
        MemorySegment s;
        try {
            s = vm.memory().slice(STATS, 40);
        } catch (GuestMemoryException e) {
            throw new IllegalStateException("a micro-VM too small for the responder's counters", e);
        }
        return new Counters(s.get(ValueLayout.JAVA_LONG_UNALIGNED, 0), s.get(ValueLayout.JAVA_LONG_UNALIGNED, 8),
                s.get(ValueLayout.JAVA_LONG_UNALIGNED, 16), s.get(ValueLayout.JAVA_LONG_UNALIGNED, 24), s.get(ValueLayout.JAVA_LONG_UNALIGNED, 32));
    }
}
