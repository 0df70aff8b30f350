package dev.jvbus.model.virtionet;

import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.ring.QueueService;
import dev.jvbus.core.ring.virtio.DescriptorChain;
import dev.jvbus.core.ring.virtio.SplitVirtqueue;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * virtio-net's control virtqueue (virtio 1.x 5.1.6.5), served by a worker of its own: each buffer is
 * one command, {@code u8 class; u8 command; data[]} in device-readable descriptors, then one
 * device-writable {@code u8 ack} (VIRTIO_NET_OK or VIRTIO_NET_ERR). The queue sits after the data
 * queues: index 2 with one queue pair, 2N with N ({@link VirtioNetModel#ctrlQueue(int)}).
 *
 * <p>Every command buffer is the guest's, so this is the one place it is checked:
 * <ul>
 * <li>a buffer without the two header bytes or without a writable byte for the ack cannot be answered:
 *     the device faults (NEEDS_RESET), as QEMU's {@code virtio_net_handle_ctrl} does;</li>
 * <li>anything else is answered: a command whose data is longer than the longest command
 *     ({@link #MAX_DATA}), an unknown class or command, a command whose feature was not negotiated, or
 *     data of the wrong length or value gets VIRTIO_NET_ERR in its ack byte and changes nothing;
 *     {@link NetControl} checks each command's data and says OK or ERR.</li>
 * </ul>
 * No exception from a command leaves this class: an unexpected one is logged and answered with ERR,
 * so the queue, and the device, keep working.
 *
 * <p>Not the hot path: commands are rare (a driver's set-up, an administrator's change). Nothing is
 * allocated per command all the same (one scratch buffer per queue).
 */
final class ControlQueue implements QueueService {
    private static final System.Logger LOG = System.getLogger(ControlQueue.class.getName());

    static final int OK = 0, ERR = 1;
    /** Class and command bytes in front of the data. */
    static final int HEADER = 2;
    /**
     * The longest command data: MAC_TABLE_SET with two full tables (two {@code le32 entries} and
     * {@link dev.jvbus.net.RxFilter#MAX_ADDRESSES} addresses of 6 bytes between them), rounded up.
     */
    static final int MAX_DATA = 1024;
    /** Commands taken per batch before the ring is published. */
    static final int BATCH = 16;

    private final SplitVirtqueue q;
    private final int index;
    private final GuestMemory memory;
    private final NetControl control;
    private final DescriptorChain chain;
    private final MemorySegment command = MemorySegment.ofArray(new byte[HEADER + MAX_DATA]);

    ControlQueue(SplitVirtqueue q, int index, GuestMemory memory, NetControl control) {
        this.q = q;
        this.index = index;
        this.memory = memory;
        this.control = control;
        this.chain = q.newChain();
    }

    SplitVirtqueue ring() {
        return q;
    }

    @Override
    public boolean poll() throws QueueFault {
        int n = 0;
        while (n < BATCH && q.pop(chain)) {
            int ack = answer(chain);
            if (ack == OK) control.commandsOk++;
            else control.commandsRefused++;
            writeAck(chain, ack);
            q.pushUsed(chain.head(), 1);
            n++;
        }
        if (n > 0) q.publishUsed();
        return n > 0;
    }

    @Override public boolean hasWork() { return q.hasAvailable(); }

    @Override public boolean armDoorbell() { return q.enableKicks(); }

    @Override public void disarmDoorbell() { q.disableKicks(); }

    /** Checks the buffer's shape, reads the command and has it carried out: the ack byte to write. */
    private int answer(DescriptorChain c) throws QueueFault {
        long readable = c.readableBytes();
        if (readable < HEADER || c.writableBytes() < 1)
            throw fault("control buffer " + c.head() + " has " + readable + " readable and " + c.writableBytes()
                    + " writable bytes: a command needs its 2-byte class and command, and 1 writable byte for the ack");
        if (readable > HEADER + MAX_DATA) {
            LOG.log(System.Logger.Level.DEBUG, "{0}: control command of {1} bytes refused (longest is {2})",
                    control, String.valueOf(readable), String.valueOf(HEADER + MAX_DATA));
            return ERR;
        }
        gather(c, (int) readable);
        int cls = command.get(ValueLayout.JAVA_BYTE, 0) & 0xff, cmd = command.get(ValueLayout.JAVA_BYTE, 1) & 0xff;
        try {
            return control.execute(cls, cmd, command, HEADER, (int) readable - HEADER) ? OK : ERR;
        } catch (RuntimeException e) {   // a bug of ours must not take the queue (or the worker) down
            LOG.log(System.Logger.Level.WARNING, control + ": control command class " + cls + " command " + cmd + " failed; answered ERR", e);
            return ERR;
        }
    }

    private void gather(DescriptorChain c, int len) {
        long at = 0;
        for (int i = 0, n = c.readableCount(); i < n && at < len; i++) {
            long k = Math.min(c.length(i), len - at);
            MemorySegment.copy(c.segment(i), c.offset(i), command, at, k);
            at += k;
        }
    }

    /** The ack goes to the first writable byte (a driver may give more room than the byte). */
    private void writeAck(DescriptorChain c, int ack) {
        for (int i = c.readableCount(), n = c.count(); i < n; i++) {
            if (c.length(i) == 0) continue;
            c.segment(i).set(ValueLayout.JAVA_BYTE, c.offset(i), (byte) ack);
            memory.markDirty(c.address(i), 1);   // migration: the ack is device-written guest memory
            return;
        }
    }

    private QueueFault fault(String why) {
        q.counters().fault(QueueFault.Reason.BAD_DESCRIPTOR);
        return new QueueFault(index, QueueFault.Reason.BAD_DESCRIPTOR, why);
    }
}
