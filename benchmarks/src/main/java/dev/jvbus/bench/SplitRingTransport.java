package dev.jvbus.bench;

import dev.jvbus.core.memory.HostMemory;
import dev.jvbus.core.ring.FrameCopy;
import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.ring.virtio.DescriptorChain;
import dev.jvbus.core.ring.virtio.SplitRingLayout;
import dev.jvbus.core.ring.virtio.SplitVirtqueue;
import dev.jvbus.core.ring.virtio.SplitVirtqueueDriver;
import dev.jvbus.core.doorbell.Notifier;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * jvbus's virtio split ring ({@code dev.jvbus.core.ring.virtio}) between the two processes, EVENT_IDX and
 * IN_ORDER on (see {@link #IN_ORDER}).
 *
 * <p>Memory (one memfd, guest address = offset): descriptor table, available ring and used ring, each
 * on its own cache lines, then {@code queueSize} message slots of {@link RingMemory#slotSize}. The
 * producer is the driver side: it copies the stamped message from its private buffer into the next
 * slot (slots are used round-robin; the device completes in order, so a slot is free again once
 * its descriptor came back), adds a one-descriptor chain ({@code addLater}: the available index is
 * stored once per batch, by {@code kickIfNeeded}), and calls {@code kickIfNeeded} once per
 * {@link RingMemory#BATCH} adds, when the ring is full and at {@link Producer#flush()}; used buffers are
 * collected only when no descriptor is free. The consumer is the device side: pop, copy the bytes
 * out into a private buffer, pushUsed, and publishUsed once per batch and whenever the ring is empty.
 *
 * <p>Waiting: {@link RingWait}, arming with {@code enableKicks} (consumer) or
 * {@code enableInterruptsDelayed} (producer: wake when 3/4 of the ring is free).
 */
public final class SplitRingTransport implements Transport {
    /** Negotiate VIRTIO_F_IN_ORDER (one used element per published batch, no free list); on unless -Djvbus.bench.inOrder=false. */
    static final boolean IN_ORDER = !"false".equals(System.getProperty("jvbus.bench.inOrder"));

    @Override public String name() { return "split"; }
    @Override public List<WaitMode> modes() { return List.of(WaitMode.SPIN, WaitMode.ADAPTIVE); }
    @Override public boolean baseline() { return false; }

    /** Offsets of the areas in the memfd. */
    record Layout(int queueSize, int slotSize, long desc, long avail, long used, long slots, long bytes) {
        static Layout of(int queueSize, int slotSize) {
            SplitRingLayout l = SplitRingLayout.of(queueSize);
            long desc = 0;
            long avail = RingMemory.align(desc + l.descTableBytes(), 64);
            long used = RingMemory.align(avail + l.availRingBytes(), 64);
            long slots = RingMemory.align(used + l.usedRingBytes(), 64);
            long bytes = RingMemory.align(slots + (long) queueSize * slotSize, 4096);
            return new Layout(queueSize, slotSize, desc, avail, used, slots, bytes);
        }
    }

    @Override
    public Setup setup(Case c) {
        Layout l = Layout.of(RingMemory.queueSize(c), RingMemory.slotSize(c.size()));
        return RingMemory.create("jvbus-bench-split", l.bytes(), l.queueSize(), l.slotSize());
    }

    @Override
    public Producer attachProducer(Case c, List<String> args) throws IOException {
        RingMemory.Attached a = RingMemory.Attached.of(args);
        Layout l = Layout.of(a.queueSize(), a.slotSize());
        try {
            SplitVirtqueueDriver q = SplitVirtqueueDriver.create(0, l.queueSize(), l.desc(), l.avail(), l.used(),
                    a.memory(), true, false, IN_ORDER, Notifier.of(a.kick()));
            return new RingProducer(a, l, q, c.size(), c.mode());
        } catch (QueueFault f) {
            throw new IOException(f);
        }
    }

    @Override
    public Consumer attachConsumer(Case c, List<String> args) throws IOException {
        RingMemory.Attached a = RingMemory.Attached.of(args);
        Layout l = Layout.of(a.queueSize(), a.slotSize());
        try {
            SplitVirtqueue q = SplitVirtqueue.create(0, l.queueSize(), l.desc(), l.avail(), l.used(),
                    a.memory(), true, false, IN_ORDER, Notifier.of(a.call()));
            return new RingConsumer(a, q, c.size(), c.mode());
        } catch (QueueFault f) {
            throw new IOException(f);
        }
    }

    private static final class RingProducer implements Producer {
        private final RingMemory.Attached a;
        private final SplitVirtqueueDriver q;
        // The message buffer and the ring as the copy reaches them: at host addresses through HostMemory.ALL when they
        // are global-scope memory (as a device copies a frame it took from a ring: HostMemory), else the segments.
        private final MemorySegment msgView, ringView;
        private final long msgAt, ringAt;
        /** The message buffer's bytes, for the stamps: written as Agrona's harness writes its own (see {@link Message}). */
        private final UnsafeBuffer stamps;
        private final int size, slotSize, mask;
        private final long slots;
        private final RingWait wait;
        private int nextSlot;
        private int sinceKick;

        RingProducer(RingMemory.Attached a, Layout l, SplitVirtqueueDriver q, int size, WaitMode mode) {
            this.a = a;
            this.q = q;
            MemorySegment ring = a.segment();
            MemorySegment msg = Arena.global().allocate(size, 8);
            this.stamps = new UnsafeBuffer(msg.address(), size);
            this.msgView = HostMemory.view(msg);
            this.msgAt = HostMemory.offsetInView(msg, 0);
            this.ringView = HostMemory.view(ring);
            this.ringAt = HostMemory.offsetInView(ring, 0);
            Message.init(stamps, size);
            this.size = size;
            this.slotSize = l.slotSize();
            this.mask = l.queueSize() - 1;
            this.slots = l.slots();
            // enableInterruptsDelayed: wake when 3/4 of the ring is free, not at the first used buffer
            this.wait = new RingWait(mode, a.call(), q::hasUsed, q::enableInterruptsDelayed, q::disableInterrupts, q::hasUsed);
        }

        @Override
        public void send(long seq) throws IOException {
            try {
                // Harness work, not transport work: the same UnsafeBuffer stamps as AgronaTransport's producer
                // (checked FFM stores here cost a liveness check each, which the figure would charge to the ring).
                Message.stamp(stamps, size, seq);
                if (q.freeDescriptors() == 0) reclaim();
                long addr = slots + (long) (nextSlot & mask) * slotSize;
                nextSlot++;
                FrameCopy.copy(msgView, msgAt, ringView, ringAt + addr, size);   // addr + size: inside the ring's slots
                q.addLater(addr, size, false);         // visible at the batch's kickIfNeeded: one avail idx store per batch
                if (++sinceKick == RingMemory.BATCH) {
                    sinceKick = 0;
                    q.kickIfNeeded();
                }
            } catch (QueueFault f) {
                throw new IOException(f);
            }
        }

        /** No descriptor free: collect used buffers, waiting for them if there are none. */
        private void reclaim() throws QueueFault {
            while (true) {
                q.collectUsed();                       // slots are reused round-robin: only the room matters
                if (q.freeDescriptors() > 0) return;
                sinceKick = 0;
                q.kickIfNeeded();                      // the device may be asleep waiting for exactly these
                wait.await();
            }
        }

        @Override
        public void flush() {
            sinceKick = 0;
            q.kickIfNeeded();
        }

        @Override
        public void close() {
            wait.close();
            a.close();
        }
    }

    private static final class RingConsumer implements Consumer {
        private final RingMemory.Attached a;
        private final SplitVirtqueue q;
        private final DescriptorChain chain;
        // The buffer each message is copied into, as RingProducer's views: HostMemory.ALL for this global-scope buffer.
        private final MemorySegment copyView;
        private final long copyAt;
        /** The same bytes, for reading the stamps as Agrona's harness reads its copy. */
        private final UnsafeBuffer copied;
        private final RingWait wait;
        private int unpublished;

        RingConsumer(RingMemory.Attached a, SplitVirtqueue q, int size, WaitMode mode) {
            this.a = a;
            this.q = q;
            this.chain = q.newChain();
            // Native, like the producer's message buffer: every FrameCopy call then sees one segment class (a
            // monomorphic copy is small enough for C2 to inline; a heap/native mix was compiled on its own).
            MemorySegment copy = Arena.global().allocate(Math.max(size, Message.MIN_SIZE), 8);
            this.copied = new UnsafeBuffer(copy.address(), (int) copy.byteSize());
            this.copyView = HostMemory.view(copy);
            this.copyAt = HostMemory.offsetInView(copy, 0);
            this.wait = new RingWait(mode, a.kick(), q::hasAvailable, q::enableKicks, q::disableKicks, q::hasAvailable);
        }

        @Override
        public int receive(MessageSink sink, int max) throws IOException {
            try {
                int n = 0;
                while (true) {
                    while (n < max && q.pop(chain)) {
                        int length = (int) chain.length(0);
                        int len = Math.min(length, copied.capacity());
                        FrameCopy.copy(chain.hostSegment(0), chain.hostOffset(0), copyView, copyAt, len);   // len <= copy's size
                        sink.onMessage(copied.getLong(0), copied.getLong(len - 8), length);   // as AgronaTransport's handler
                        q.pushUsed(chain.head(), 0);
                        if (++unpublished == RingMemory.BATCH) {
                            unpublished = 0;
                            q.publishUsed();
                        }
                        n++;
                    }
                    if (n > 0) return n;
                    if (unpublished > 0) {                 // ring empty: hand back what we hold before waiting
                        unpublished = 0;
                        q.publishUsed();
                        continue;
                    }
                    wait.await();
                }
            } catch (QueueFault f) {
                throw new IOException(f);
            }
        }

        @Override
        public void close() {
            wait.close();
            a.close();
        }
    }
}
