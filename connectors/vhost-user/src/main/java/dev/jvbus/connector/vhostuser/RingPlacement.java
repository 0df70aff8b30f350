package dev.jvbus.connector.vhostuser;

import dev.jvbus.connector.vhostuser.protocol.VhostUserException;
import dev.jvbus.core.spi.QueueConfig;
import dev.jvbus.core.ring.virtio.SplitRingLayout;
import dev.jvbus.core.state.QueueState;

/**
 * Where a ring is in guest memory. SET_VRING_ADDR names the three areas by front-end user address;
 * descriptors carry guest addresses, so the areas are translated once, here, each as a whole area of
 * the size {@link SplitRingLayout} gives for the ring's size, inside one region of the memory table.
 */
final class RingPlacement {
    private RingPlacement() { }

    /**
     * The guest placement of ring {@code v} (placed: {@link Vring#configured()}) in {@code memory}.
     *
     * @throws VhostUserException if an area is not wholly inside one region of the table
     */
    static QueueConfig of(Vring v, MemoryTable memory) throws VhostUserException {
        SplitRingLayout layout = SplitRingLayout.of(v.num);   // the size passed QueueSpec.accepts at SET_VRING_NUM
        long desc = memory.userToGuest(v.addr.desc(), layout.descTableBytes());
        long avail = memory.userToGuest(v.addr.avail(), layout.availRingBytes());
        long used = memory.userToGuest(v.addr.used(), layout.usedRingBytes());
        return new QueueConfig(v.index, v.num, desc, avail, used);
    }

    /** Whether {@code state} describes a ring at exactly this placement (a memory change left it where it was). */
    static boolean same(QueueConfig placement, QueueState state) {
        return state.index() == placement.index() && state.size() == placement.size() && state.descAddr() == placement.descAddr()
                && state.availAddr() == placement.availAddr() && state.usedAddr() == placement.usedAddr();
    }
}
