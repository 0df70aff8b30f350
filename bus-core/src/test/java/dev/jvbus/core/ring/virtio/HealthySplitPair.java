package dev.jvbus.core.ring.virtio;

import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.memory.MemoryRegion;
import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.sys.EventFd;
import dev.jvbus.core.sys.Memfd;
import java.lang.foreign.ValueLayout;

/**
 * The well-behaved neighbour of a fuzzed ring: another guest's memory (its own memfd), a driver and a
 * device over one split ring, and a real eventfd the device signals. Made once per fuzz target and
 * driven one round trip after every input: whatever the fuzzed ring went through, this one must still
 * carry a buffer there and back with the bytes the device wrote (nothing static, shared or global was
 * broken on the way).
 */
final class HealthySplitPair {
    private static final long G = 0x4000_0000L, MEM = 0x4000;
    private static final long DESC = G, AVAIL = G + 0x200, USED = G + 0x400, BUF = G + 0x1000;
    private static final int SIZE = 8;

    private final Memfd memfd = Memfd.create("fuzz-neighbour", MEM);
    private final EventFd call = EventFd.create();
    private final SplitVirtqueueDriver driver;
    private final SplitVirtqueue device;
    private final DescriptorChain chain;
    private long trips;

    HealthySplitPair() {
        GuestMemory memory = GuestMemory.of(new MemoryRegion(G, MEM, memfd.segment()));
        try {
            driver = SplitVirtqueueDriver.create(0, SIZE, DESC, AVAIL, USED, memory, true, true, false, Notifier.NONE);
            device = SplitVirtqueue.create(0, SIZE, DESC, AVAIL, USED, memory, true, true, Notifier.of(call));
        } catch (QueueFault e) {
            throw new IllegalStateException(e);
        }
        chain = device.newChain();
    }

    /** One buffer offered, filled by the device, returned and collected; throws AssertionError if not. */
    void assertCarriesOn() throws QueueFault {
        trips++;
        int head = driver.add(BUF, 64, true);
        if (head < 0) throw new AssertionError("healthy ring: no free descriptor (" + driver + ")");
        if (!device.pop(chain)) throw new AssertionError("healthy ring: the device found no buffer (" + device + ")");
        if (chain.head() != head || chain.writableBytes() != 64)
            throw new AssertionError("healthy ring: popped " + chain + ", offered head " + head);
        chain.segment(0).set(ValueLayout.JAVA_LONG_UNALIGNED, chain.offset(0), trips);
        device.pushUsed(head, 64);
        device.publishUsed();
        long used = driver.pollUsed();
        if (used < 0 || SplitVirtqueueDriver.usedId(used) != head || SplitVirtqueueDriver.usedLength(used) != 64)
            throw new AssertionError("healthy ring: collected " + Long.toHexString(used) + " for head " + head);
        if (memfd.segment().get(ValueLayout.JAVA_LONG_UNALIGNED, BUF - G) != trips)
            throw new AssertionError("healthy ring: the device's bytes did not arrive");
        call.drain();
    }
}
