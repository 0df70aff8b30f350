package dev.jvbus.core.ring.ioq;

import dev.jvbus.core.ring.QueueFault;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Test producer and consumer over an IOQ ring: the driver writes sequence numbers into one
 * 16-byte buffer per descriptor slot and offers them (kick per buffer: suppression decides);
 * the device checks every number arrives once and in order and completes it with length 8.
 * Both wait with {@link SpinThenBlock} when there is nothing to do.
 */
final class IoqPump {
    static final int BUF = 16;
    static final int SPINS = 2_000;

    private IoqPump() {}

    /** Device side: consumes sequence numbers {@code from} .. {@code to-1}; returns the next expected. */
    static long consume(IoqDevice dev, SpinThenBlock waiter, long from, long to) throws QueueFault {
        ShmSignal sig = dev.signal();
        sig.disable();   // masked while running; SpinThenBlock arms it before sleeping
        long expected = from;
        while (expected < to) {
            sig.beginPass();
            int got = 0;
            IoqDevice.Buffer b;
            while ((b = dev.poll()) != null) {
                if (b.length() != BUF) throw new AssertionError("buffer length " + b.length());
                long v = b.segment().get(ValueLayout.JAVA_LONG_UNALIGNED, b.offset());
                if (v != expected) throw new AssertionError("expected sequence " + expected + ", got " + v);
                expected++;
                dev.complete(8);
                if ((++got & 63) == 0) dev.notifyDriver();
            }
            if (got > 0) {
                dev.notifyDriver();
                continue;
            }
            if (sig.endPass()) continue;
            waiter.await(sig);
        }
        return expected;
    }

    /** Driver side: offers 0..n-1 and reaps every completion, checking cookies and lengths in order. */
    static void produce(IoqDriver drv, SpinThenBlock waiter, MemorySegment bufs, long bufGuest, long n) throws QueueFault {
        ShmSignal sig = drv.signal();
        sig.disable();   // masked while running; SpinThenBlock arms it before sleeping
        Reaper reaper = new Reaper();
        long seq = 0;
        while (reaper.next < n) {
            sig.beginPass();
            boolean progress = false;
            while (seq < n && drv.hasRoom()) {
                long slot = drv.nextSlot();
                bufs.set(ValueLayout.JAVA_LONG_UNALIGNED, slot * BUF, seq);
                drv.offer(seq, bufGuest + slot * BUF, BUF);
                drv.kick();
                seq++;
                progress = true;
            }
            if (drv.reap(reaper, Integer.MAX_VALUE) > 0) progress = true;
            if (progress) continue;
            if (sig.endPass()) continue;
            waiter.await(sig);
        }
    }

    static final class Reaper implements IoqDriver.CompletionSink {
        long next;

        @Override
        public void completed(long cookie, long length) {
            if (cookie != next) throw new AssertionError("completion cookie " + cookie + ", expected " + next);
            if (length != 8) throw new AssertionError("completion length " + length);
            next++;
        }
    }

    static String figures(String label, long n, long nanos, IoqDriver drv, IoqDevice dev, SpinThenBlock prodWait, SpinThenBlock consWait) {
        return String.format("%s: %,d buffers in %,d ms (%.1f M/s); kicks sent %,d suppressed %,d (%.5f per buffer); "
                        + "completion signals sent %,d suppressed %,d; blocks producer %,d consumer %,d; lost wakeups %d",
                label, n, nanos / 1_000_000, n * 1e3 / nanos,
                drv.signal().signalsSent, drv.signal().signalsSuppressed, (double) drv.signal().signalsSent / n,
                dev.signal().signalsSent, dev.signal().signalsSuppressed,
                prodWait.blocks, consWait.blocks, prodWait.lostWakeups + consWait.lostWakeups);
    }
}
