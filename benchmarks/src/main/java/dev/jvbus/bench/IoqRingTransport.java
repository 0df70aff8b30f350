package dev.jvbus.bench;

import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.ring.ioq.IoqDevice;
import dev.jvbus.core.ring.ioq.IoqDriver;
import dev.jvbus.core.ring.ioq.IoqLayout;
import dev.jvbus.core.ring.ioq.ShmSignal;
import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.sys.EventFd;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.function.BooleanSupplier;

/**
 * jvbus's vbus IOQ ring ({@code dev.jvbus.core.ring.ioq}) between the two processes, shm-signal
 * suppression on.
 *
 * <p>Memory (one memfd, guest address = offset): the ring head with its embedded descriptors at 0,
 * then one message slot per descriptor. The producer is the driver (north): it copies the stamped
 * message into the slot of {@code nextSlot()} and stages it ({@code offerLater}); it hands the batch
 * over and kicks ({@code kick}: publishOffers, then shm-signal inject) once per
 * {@link RingMemory#BATCH} offers, when the ring is full and at {@link Producer#flush()}, and reaps
 * completions only when the ring is full. The consumer is the device (south): poll, copy the bytes
 * out, {@code completeLater}; once per batch and whenever the ring is empty it hands the batch back
 * ({@code publishCompleted}: one inuse.head store) and notifies the driver. The driver
 * lays the ring out in its own process; the device attaches once the ring magic is there.
 *
 * <p>Waiting: {@link RingWait} with the signal masked while running; to sleep, {@link ShmSignal}'s
 * receive pass, then unmask ({@link #waitOn}).
 */
public final class IoqRingTransport implements Transport {
    @Override public String name() { return "ioq"; }
    @Override public List<WaitMode> modes() { return List.of(WaitMode.SPIN, WaitMode.ADAPTIVE); }
    @Override public boolean baseline() { return false; }

    static long slotsOffset(int count) { return RingMemory.align(IoqLayout.ringSize(count), 64); }

    static long bytes(int count, int slotSize) { return RingMemory.align(slotsOffset(count) + (long) count * slotSize, 4096); }

    /**
     * A side's {@link RingWait} on its own shm-signal, masked while it runs: to sleep it runs
     * {@link ShmSignal}'s receive pass (beginPass, look at the ring, endPass) and unmasks; any of
     * those seeing work or an inject means look again instead.
     */
    static RingWait waitOn(WaitMode mode, EventFd bell, ShmSignal sig, BooleanSupplier work) {
        return new RingWait(mode, bell, work, () -> {
            sig.beginPass();
            return work.getAsBoolean() || sig.endPass() || sig.enable();
        }, sig::disable, sig::isDirty);
    }

    @Override
    public Setup setup(Case c) {
        int n = RingMemory.queueSize(c), slot = RingMemory.slotSize(c.size());
        return RingMemory.create("jvbus-bench-ioq", bytes(n, slot), n, slot);
    }

    @Override
    public Producer attachProducer(Case c, List<String> args) throws IOException {
        RingMemory.Attached a = RingMemory.Attached.of(args);
        try {
            IoqDriver d = IoqDriver.create(0, a.memory(), 0, a.queueSize(), Notifier.of(a.kick()), true);
            return new RingProducer(a, d, c.size(), c.mode());
        } catch (QueueFault f) {
            throw new IOException(f);
        }
    }

    @Override
    public Consumer attachConsumer(Case c, List<String> args) throws IOException {
        RingMemory.Attached a = RingMemory.Attached.of(args);
        long deadline = System.nanoTime() + 60_000_000_000L;
        while (true) {
            try {
                return new RingConsumer(a, IoqDevice.attach(0, a.memory(), 0, a.queueSize(), Notifier.of(a.call()), true), c.size(), c.mode());
            } catch (QueueFault f) {   // the producer JVM has not laid the ring out yet (magic still 0)
                if (f.reason() != QueueFault.Reason.BAD_RING_MAGIC || System.nanoTime() > deadline) throw new IOException(f);
                try {
                    Thread.sleep(1);
                } catch (InterruptedException e) {
                    throw new IOException(e);
                }
            }
        }
    }

    private static final class RingProducer implements Producer, IoqDriver.CompletionSink {
        private final RingMemory.Attached a;
        private final IoqDriver d;
        private final ShmSignal sig;
        private final MemorySegment ring;
        private final MemorySegment msg;
        private final int size, slotSize;
        private final long slots;
        private final RingWait wait;
        private int sinceKick;

        RingProducer(RingMemory.Attached a, IoqDriver d, int size, WaitMode mode) {
            this.a = a;
            this.d = d;
            this.sig = d.signal();
            this.ring = a.segment();
            this.msg = Arena.global().allocate(size, 8);
            for (int i = 0; i < size; i++) msg.set(ValueLayout.JAVA_BYTE, i, (byte) (i * 31 + 7));
            this.size = size;
            this.slotSize = a.slotSize();
            this.slots = slotsOffset(a.queueSize());
            this.wait = waitOn(mode, a.call(), sig, this::reapSome);
        }

        @Override public void completed(long cookie, long length) { }

        private boolean reapSome() {
            try {
                return d.reap(this, Integer.MAX_VALUE) > 0;
            } catch (QueueFault f) {
                return true;   // the fault is rethrown by the next call
            }
        }

        @Override
        public void send(long seq) throws IOException {
            try {
                msg.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, seq);
                msg.set(ValueLayout.JAVA_LONG_UNALIGNED, size - 8, seq);
                if (!d.hasRoom()) reclaim();
                long addr = slots + (long) d.nextSlot() * slotSize;
                MemorySegment.copy(msg, 0, ring, addr, size);
                d.offerLater(seq, addr, size);         // handed over at the batch's kick: one tail store per batch
                if (++sinceKick == RingMemory.BATCH) {
                    sinceKick = 0;
                    d.kick();
                }
            } catch (QueueFault f) {
                throw new IOException(f);
            }
        }

        /** The ring is full: reap completions, waiting for them if there are none. */
        private void reclaim() throws QueueFault {
            while (true) {
                d.reap(this, Integer.MAX_VALUE);       // (the wait's look reaps too: room is what counts)
                if (d.hasRoom()) return;
                if (d.fault() != null) throw d.fault();
                sinceKick = 0;
                d.kick();
                wait.await();
            }
        }

        @Override
        public void flush() throws IOException {
            sinceKick = 0;
            try {
                d.kick();
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

    private static final class RingConsumer implements Consumer {
        private final RingMemory.Attached a;
        private final IoqDevice dev;
        private final ShmSignal sig;
        private final MemorySegment copy;
        private final RingWait wait;
        private IoqDevice.Buffer held;
        private int unnotified;

        RingConsumer(RingMemory.Attached a, IoqDevice dev, int size, WaitMode mode) {
            this.a = a;
            this.dev = dev;
            this.sig = dev.signal();
            this.copy = MemorySegment.ofArray(new byte[Math.max(size, Message.MIN_SIZE)]);
            this.wait = waitOn(mode, a.kick(), sig, this::peek);
        }

        /** Takes the next buffer into {@code held} if there is one (the spin condition). */
        private boolean peek() {
            if (held == null) {
                try {
                    held = dev.poll();
                } catch (QueueFault f) {
                    return true;   // rethrown by the next poll
                }
            }
            return held != null;
        }

        @Override
        public int receive(MessageSink sink, int max) throws IOException {
            try {
                int n = 0;
                while (true) {
                    IoqDevice.Buffer b = held;
                    held = null;
                    if (b == null) b = dev.poll();
                    while (b != null) {
                        int len = (int) Math.min(b.length(), copy.byteSize());
                        MemorySegment.copy(b.segment(), b.offset(), copy, 0, len);
                        sink.onMessage(copy.get(ValueLayout.JAVA_LONG_UNALIGNED, 0),
                                copy.get(ValueLayout.JAVA_LONG_UNALIGNED, len - 8), (int) b.length());
                        dev.completeLater(0);           // handed back once per batch: one inuse.head store
                        if (++unnotified == RingMemory.BATCH) {
                            unnotified = 0;
                            dev.publishCompleted();
                            dev.notifyDriver();
                        }
                        if (++n == max) break;
                        b = dev.poll();
                    }
                    if (n > 0) return n;
                    if (unnotified > 0) {
                        unnotified = 0;
                        dev.publishCompleted();
                        dev.notifyDriver();
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
