package dev.jvbus.core.ring.virtio;

import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.memory.MemoryRegion;
import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.sys.EventFd;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.Callable;
import java.util.concurrent.FutureTask;

/**
 * Test fixture: a stream of sequence numbers through one split ring. The driver writes sequence
 * number {@code s} into a readable 8-byte buffer and offers it with an 8-byte writable buffer; the
 * device checks that it reads the numbers in order, writes {@code s ^ ECHO} back and pushes used with
 * length 8; the driver checks the echo, in order, and recycles the slot. Both sides spin a bounded
 * number of iterations, then enable signals, re-check, and block on their eventfd. Used by the
 * in-process, cross-process and save/restore tests.
 *
 * <p>A wait that times out is not by itself a lost wakeup: on a loaded machine (or while a child JVM
 * starts) the peer may simply not have run. A <em>lost wakeup</em> is a wait whose signal was due (the
 * peer published what the waiter asked to be woken for) and still has not come a whole further wait
 * later; that is what the tests assert is zero.
 */
final class SequenceStream {
    static final long GUEST_BASE = 0x4000_0000L;   // guest addresses differ from segment offsets on purpose
    static final long MEMORY_BYTES = 1 << 20;
    static final int QUEUE_SIZE = Integer.getInteger("jvbus.test.qsize", 1024);
    static final long DESC = GUEST_BASE;                                   // 16 * size
    static final long AVAIL = DESC + 16L * QUEUE_SIZE;                     // 6 + 2 * size
    static final long USED = (AVAIL + 6 + 2L * QUEUE_SIZE + 4095) & ~4095L; // 6 + 8 * size, page aligned as legacy rings are
    static final long BUFFERS = (USED + 6 + 8L * QUEUE_SIZE + 4095) & ~4095L;
    static final int SLOTS = QUEUE_SIZE / 2;           // two descriptors per chain: at most SLOTS chains in flight
    static final long ECHO = 0x5a5a_5a5a_5a5a_5a5aL;
    static final int SPIN = Integer.getInteger("jvbus.test.spin", 200);
    static final int BATCH = Integer.getInteger("jvbus.test.batch", 128);
    static final boolean DELAYED = Boolean.parseBoolean(System.getProperty("jvbus.test.delayed", "true"));
    static final int WAIT_MILLIS = 2_000;
    static final ValueLayout.OfShort LE16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);

    static GuestMemory memory(MemorySegment segment) {
        return GuestMemory.of(new MemoryRegion(GUEST_BASE, MEMORY_BYTES, segment.asSlice(0, MEMORY_BYTES)));
    }

    static long readableAddr(long seq) { return BUFFERS + (seq % SLOTS) * 16; }

    static long writableAddr(long seq) { return readableAddr(seq) + 8; }

    /** Runs {@code body} on a new named thread; get() rethrows its failure. */
    static <T> FutureTask<T> start(String name, Callable<T> body) {
        FutureTask<T> task = new FutureTask<>(body);
        Thread t = new Thread(task, name);
        t.setDaemon(true);
        t.start();
        return task;
    }

    /** The device worker. Its queue may be replaced between runs (save/restore). */
    static final class Device {
        final EventFd kick;
        final EventFdWait waiter;
        SplitVirtqueue queue;
        DescriptorChain chain;
        long expected;            // next sequence number the device must see
        long waits, timeouts, lostWakeups;
        volatile long progress;   // expected, published once per batch for a watching thread
        volatile boolean pause;
        /** The device pauses itself once it has consumed this many, so a test's pauses land however the threads are scheduled. */
        volatile long pauseAt = Long.MAX_VALUE;

        Device(SplitVirtqueue queue, EventFd kick) {
            this.kick = kick;
            this.waiter = new EventFdWait(kick.fd());
            use(queue);
        }

        void use(SplitVirtqueue q) {
            queue = q;
            chain = q.newChain();
            q.disableKicks();
        }

        /** Consumes until {@code total} numbers arrived (true) or a pause was asked for (false, queue quiesced). */
        boolean run(long total) throws QueueFault {
            SplitVirtqueue q = queue;
            DescriptorChain c = chain;
            while (expected < total) {
                int batch = 0;
                while (q.pop(c)) {
                    if (pause || expected >= pauseAt) { // leave the chain in flight, unconsumed: the restored queue hands it out again
                        q.publishUsed();
                        return false;
                    }
                    if (c.count() != 2 || c.readableCount() != 1 || c.length(0) != 8 || c.length(1) != 8)
                        throw new AssertionError("unexpected chain " + c);
                    long seq = c.segment(0).get(ValueLayout.JAVA_LONG_UNALIGNED, c.offset(0));
                    if (seq != expected) throw new AssertionError("device expected " + expected + " but read " + seq);
                    c.segment(1).set(ValueLayout.JAVA_LONG_UNALIGNED, c.offset(1), seq ^ ECHO);
                    q.pushUsed(c.head(), 8);
                    expected++;
                    if (++batch == BATCH) {
                        q.publishUsed();
                        progress = expected;
                        batch = 0;
                    }
                }
                q.publishUsed();
                progress = expected;
                if (expected >= total) break;
                if (pause || expected >= pauseAt) return false;
                if (spinFor(q)) continue;
                if (q.enableKicks()) {
                    q.disableKicks();
                    continue;
                }
                waits++;
                while (!waiter.await(WAIT_MILLIS)) {
                    timeouts++;
                    if (pause) break;
                    // Kicks are enabled for every new buffer: one published without its kick is a lost wakeup.
                    if (q.hasAvailable() && !waiter.await(WAIT_MILLIS)) {
                        lostWakeups++;
                        break;
                    }
                }
                kick.drain();
                q.disableKicks();
            }
            return true;
        }

        private static boolean spinFor(SplitVirtqueue q) {
            for (int i = 0; i < SPIN; i++) {
                if (q.hasAvailable()) return true;
                Thread.onSpinWait();
            }
            return false;
        }
    }

    /** The driver: produces {@code total} numbers, checks every echo in order. */
    static final class Driver {
        final SplitVirtqueueDriver queue;
        final boolean eventIdx;   // as negotiated for the ring (decides what the device owes, see interruptDue)
        final EventFd call;
        final EventFdWait waiter;
        final GuestMemory memory;
        final MemorySegment buffers;   // the whole region, for writing sequence numbers
        long sent, collected;
        long waits, timeouts, lostWakeups;

        Driver(SplitVirtqueueDriver queue, boolean eventIdx, EventFd call, GuestMemory memory) {
            this.queue = queue;
            this.eventIdx = eventIdx;
            this.call = call;
            this.waiter = new EventFdWait(call.fd());
            this.memory = memory;
            this.buffers = memory.regions().getFirst().segment();
        }

        long run(long total) throws QueueFault {
            SplitVirtqueueDriver q = queue;
            BufferList list = new BufferList(2);
            q.disableInterrupts();
            while (collected < total) {
                boolean progress = false;
                long e;
                while ((e = q.pollUsed()) >= 0) {
                    long echo = buffers.get(ValueLayout.JAVA_LONG_UNALIGNED, writableAddr(collected) - GUEST_BASE);
                    if (SplitVirtqueueDriver.usedLength(e) != 8 || echo != (collected ^ ECHO))
                        throw new AssertionError("driver expected echo of " + collected + ", got " + (echo ^ ECHO)
                                + " len " + SplitVirtqueueDriver.usedLength(e));
                    collected++;
                    progress = true;
                }
                int added = 0;
                while (sent < total && q.freeDescriptors() >= 2) {
                    buffers.set(ValueLayout.JAVA_LONG_UNALIGNED, readableAddr(sent) - GUEST_BASE, sent);
                    list.clear().readable(readableAddr(sent), 8).writable(writableAddr(sent), 8);
                    if (q.add(list) < 0) throw new AssertionError("no room although descriptors were free");
                    sent++;
                    if (++added % BATCH == 0) q.kickIfNeeded();
                }
                if (added > 0) {
                    q.kickIfNeeded();
                    progress = true;
                }
                if (progress || collected >= total) continue;
                if (spinFor(q)) continue;
                if (DELAYED ? q.enableInterruptsDelayed() : q.enableInterrupts()) {
                    q.disableInterrupts();
                    continue;
                }
                waits++;
                int armedAt = (int) (collected & 0xffff);
                while (!waiter.await(WAIT_MILLIS)) {
                    timeouts++;
                    if (interruptDue(armedAt) && !waiter.await(WAIT_MILLIS)) {
                        lostWakeups++;
                        break;
                    }
                }
                call.drain();
                q.disableInterrupts();
            }
            return collected;
        }

        /**
         * Whether the device owes an interrupt for what it used since the driver armed at used index
         * {@code armedAt}: with EVENT_IDX once the used index passed {@code used_event} (which
         * {@code enableInterruptsDelayed} puts ahead, so some used buffers may rightly wait), else
         * for any used buffer. Read from the ring in memory, as the device sees it.
         */
        private boolean interruptDue(int armedAt) {
            int usedIdx = buffers.get(LE16, USED + 2 - GUEST_BASE) & 0xffff;
            int moved = (usedIdx - armedAt) & 0xffff;
            if (!eventIdx) return moved != 0;
            int usedEvent = buffers.get(LE16, AVAIL + 4 + 2L * QUEUE_SIZE - GUEST_BASE) & 0xffff;
            return moved > ((usedEvent - armedAt) & 0xffff);
        }

        private static boolean spinFor(SplitVirtqueueDriver q) {
            for (int i = 0; i < SPIN; i++) {
                if (q.hasUsed()) return true;
                Thread.onSpinWait();
            }
            return false;
        }
    }
}
