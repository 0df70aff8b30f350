package dev.jvbus.core.ring.ioq;

import static dev.jvbus.core.ring.ioq.IoqLayout.U32;

import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.memory.GuestMemoryException;
import dev.jvbus.core.memory.MemoryRegion;
import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.ring.QueueFault.Reason;
import java.lang.foreign.MemorySegment;

/** Setup-time checks shared by both sides: where the ring lives and whether its head is sane. */
final class IoqRingArea {
    private IoqRingArea() {}

    /** The ring's bytes, after checking size, bounds and alignment. Allocates a slice: setup only. */
    static MemorySegment map(int queue, GuestMemory memory, long headAddr, int count) throws QueueFault {
        if (count < 1 || count > IoqLayout.MAX_COUNT)
            throw new QueueFault(queue, Reason.BAD_QUEUE_SIZE, "count " + count + " not in 1.." + IoqLayout.MAX_COUNT);
        long size = IoqLayout.ringSize(count);
        MemoryRegion r;
        try {
            r = memory.region(headAddr, size);
        } catch (GuestMemoryException e) {
            throw new QueueFault(queue, Reason.BAD_RING_ADDRESS, e.getMessage());
        }
        long off = headAddr - r.guestAddress();
        if (((r.segment().address() + off) & (IoqLayout.HEAD_ALIGN - 1)) != 0)
            throw new QueueFault(queue, Reason.BAD_RING_ADDRESS, "ring head 0x" + Long.toHexString(headAddr)
                    + " is not " + IoqLayout.HEAD_ALIGN + "-byte aligned");
        return r.segment().asSlice(off, size);
    }

    /** What vbus_shm_ioq_attach checks, plus the shm-signal header. */
    static void checkHead(int queue, MemorySegment ring, int count) throws QueueFault {
        int magic = (int) U32.getAcquire(ring, (long) IoqLayout.MAGIC_OFFSET);
        if (magic != IoqLayout.RING_MAGIC)
            throw new QueueFault(queue, Reason.BAD_RING_MAGIC, "ring magic 0x" + Integer.toHexString(magic));
        int ver = (int) U32.get(ring, (long) IoqLayout.VERSION_OFFSET);
        if (ver != IoqLayout.RING_VERSION)
            throw new QueueFault(queue, Reason.BAD_RING_VERSION, "ring version " + ver + ", want " + IoqLayout.RING_VERSION);
        int smagic = (int) U32.get(ring, (long) IoqLayout.SIGNAL_OFFSET + IoqLayout.SIGNAL_MAGIC_OFFSET);
        if (smagic != IoqLayout.SIGNAL_MAGIC)
            throw new QueueFault(queue, Reason.BAD_RING_MAGIC, "shm-signal magic 0x" + Integer.toHexString(smagic));
        int sver = (int) U32.get(ring, (long) IoqLayout.SIGNAL_OFFSET + IoqLayout.SIGNAL_VERSION_OFFSET);
        if (sver != IoqLayout.SIGNAL_VERSION)
            throw new QueueFault(queue, Reason.BAD_RING_VERSION, "shm-signal version " + sver + ", want " + IoqLayout.SIGNAL_VERSION);
        int c = (int) U32.get(ring, (long) IoqLayout.COUNT_OFFSET);
        if (c != count)
            throw new QueueFault(queue, Reason.BAD_QUEUE_SIZE, "ring head says count " + Integer.toUnsignedString(c)
                    + ", queue was set up with " + count);
    }

    /** Reads a u32 index and checks it names a descriptor. */
    static int index(int queue, MemorySegment ring, int type, int field, int count) throws QueueFault {
        int v = (int) U32.getAcquire(ring, IoqLayout.idxOffset(type, field));
        if (v < 0 || v >= count)
            throw new QueueFault(queue, Reason.INDEX_OUT_OF_RANGE, (type == IoqLayout.IDX_VALID ? "valid" : "inuse")
                    + (field == IoqLayout.IDX_HEAD ? ".head " : ".tail ") + Integer.toUnsignedString(v) + " >= count " + count);
        return v;
    }
}
