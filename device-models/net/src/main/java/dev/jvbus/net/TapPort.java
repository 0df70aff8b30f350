package dev.jvbus.net;

import dev.jvbus.core.sys.Epoll;
import dev.jvbus.core.sys.Errno;
import dev.jvbus.core.sys.EventFd;
import dev.jvbus.core.sys.NetNamespace;
import dev.jvbus.core.sys.TapDevice;
import dev.jvbus.core.sys.TapException;
import dev.jvbus.core.sys.TunOffload;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import dev.jvbus.core.ring.PollGroup;
import dev.jvbus.core.ring.QueueService;
import dev.jvbus.core.ring.QueueWorker;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A switch port bound to a Linux TAP interface: frames the kernel sends out of the TAP enter the
 * switch, frames the switch delivers here are written into the TAP (the kernel receives them).
 *
 * <p><b>Kernel to switch.</b> A reader thread (a platform thread per port) waits on the TAP fd and
 * a stop eventfd with epoll, drains the TAP with non-blocking reads into one preallocated buffer
 * and sends each frame into the switch with the kernel's vnet header as its {@link FrameOffload}, as one
 * {@link SendBatch} per drain: a receiver publishes what the drain brought it (one used-index store, one
 * notify decision, so at most one interrupt for a guest) when the TAP is empty or {@link #RX_BATCH} frames
 * were read, not per frame. Frames the kernel queued together (the ACKs of a burst of super-frames) then
 * cost the guest one interrupt, not one each; a lone frame waits only for the read that finds the TAP empty. The
 * TAP's offloads ({@code TUNSETOFFLOAD}, by default {@link #DEFAULT_OFFLOADS} as far as the kernel has
 * them) let the kernel hand us TSO/USO super-frames and partial checksums, so it does no segmentation
 * for us; receivers that cannot take them get them segmented by the switch. A frame whose header does
 * not check is dropped and counted ({@link TapStats#offloadDrops}).
 *
 * <p><b>Or read by a poll group.</b> Opened with a {@link PollGroup} ({@link #open(L2Switch, TapDevice, Set, PollGroup)}),
 * the port has no reader thread: the TAP fd sits in the group's epoll (level-triggered, never read by the wait) and
 * the group's thread reads at most {@link #RX_BATCH} frames per round, one {@link SendBatch}. Put in the group that
 * serves the tx queue of the device the TAP answers, one thread writes that device's frames into the TAP and reads
 * the kernel's answers, as QEMU's main loop does: no thread of ours is woken per ACK, and the device's tx completion
 * and the ACK's rx publish are signalled back to back by one thread, so QEMU's main loop often injects one interrupt
 * for both (bench-guest: our wake-ups per MB halved, the guest's interrupts per MB down by a quarter; see
 * benchmarks/README.md). Closing is as bounded as with a reader thread: {@link #close()} stops the member within
 * {@link #READER_STOP_BOUND}, and the fds are closed by whichever of close and the group's letting the member go
 * comes last.
 *
 * <p><b>Switch to kernel.</b> {@link #deliver} writes the frame's vnet header (zero for a bare frame)
 * and the frame with one {@code writev}, without copying a native frame: the port takes the same
 * offloads it asks the kernel for ({@link #offloadsTaken()}), so the kernel segments and checksums what
 * the switch passes on as it is. Nothing is queued: a write
 * that would block is dropped as {@link DropReason#BACKEND_BUSY}, one while the link is down (EIO)
 * as {@link DropReason#PORT_DOWN}, any other failure as {@link DropReason#BACKEND_ERROR}; all are
 * counted by the switch port, and here by errno class.
 *
 * <p>Counters are plain fields: reader-side ones written by the reader thread only, writer-side ones
 * only inside {@code deliver} and {@code flush}, which the switch serialises.
 *
 * <p><b>Closing never waits for ever.</b> The reader sends into the switch, where it can meet a wedged
 * port (at most one stall bound per stuck delivery) or itself be the delivery that is stuck in another
 * port's backend. {@link #close()} waits for it at most {@link #READER_STOP_BOUND}; past that it leaves
 * the switch and returns, and the reader, when it finally comes back, closes the TAP and the fds it
 * reads: they are closed exactly once, by whichever of the two finishes last, and never while the
 * reader may still read them (a closed fd number can be reused by another session's fd).
 */
public final class TapPort implements NetPort, AutoCloseable {
    /** Room for the largest frame a TAP takes or gives (64 KiB, the IPv4 limit plus Ethernet). */
    public static final int MAX_FRAME = FrameOffload.MAX_GSO_FRAME;
    /** The offloads a TAP port asks for unless told otherwise (USO only where the kernel has it, 6.2 on). */
    public static final Set<TunOffload> DEFAULT_OFFLOADS = Set.copyOf(EnumSet.of(TunOffload.CSUM, TunOffload.TSO4, TunOffload.TSO6,
            TunOffload.TSO_ECN, TunOffload.USO4, TunOffload.USO6));
    /** How long {@link #close()} waits for the reader thread before leaving it behind. */
    public static final Duration READER_STOP_BOUND = Duration.ofSeconds(5);
    /** Frames the reader sends as one batch at most: a TAP that never runs dry still has its frames published. */
    static final int RX_BATCH = 64;
    private static final System.Logger LOG = System.getLogger(TapPort.class.getName());
    private static final long TAP_TOKEN = 1, STOP_TOKEN = 2;
    private static final int VNET = TapDevice.VNET_HDR_SIZE;
    // virtio_net_hdr flags and gso_type (virtio 1.x, 5.1.6)
    private static final int EBADFD = 77;  // a read on a TAP whose interface is gone

    private final TapDevice tap;
    private final String name;
    private final SwitchPort port;
    private final Epoll epoll;
    private final Epoll probe;              // flush only: is the TAP readable right after our writes? (level-triggered, wait(0))
    private final Epoll look;               // a poll group's spin only (GroupReads.hasWork): its own, as flush may run on another thread
    private final EventFd stop;
    private final MemorySegment rxBuffer;   // reader thread only: [vnet header | frame]
    private final MemorySegment zeroHeader; // zero, never written after allocation
    private final MemorySegment txHeader;   // deliver only: the vnet header of a frame with offloads
    private final FrameOffload rxOffload = new FrameOffload();   // reader thread only
    private final SendBatch rxBatch = new SendBatch();           // reader thread only: the receivers of one drain
    private final FrameMeta rxMeta = new FrameMeta(rxBatch).offload(rxOffload);   // reader thread only: the kernel's header, per frame
    private final Set<TunOffload> offloads;
    private final int takes;
    private final MemorySegment txBuffer;   // deliver only: [vnet header | copy of a heap frame]
    private final Thread reader;             // null when a poll group reads the TAP (then readWorker)
    private final QueueWorker readWorker;    // null with a reader thread of its own
    private final AtomicBoolean closed = new AtomicBoolean();
    /** Set by the first of {close, the reader's exit} to finish; the second closes the fds. */
    private final AtomicBoolean oneDone = new AtomicBoolean();
    private volatile boolean readerFailed;
    private volatile boolean probeAfterWrites;

    // Reader thread only.
    private long fromKernelFrames, fromKernelBytes, offloadDrops, readErrors;
    // Inside deliver only (serialised by the switch port).
    private long toKernelFrames, toKernelBytes, wouldBlock, linkDown, writeErrors;
    // Inside deliver/flush only: writes since the last flush; flushes after writes, and those that found the TAP readable.
    private int writtenSinceFlush;
    private long flushesAfterWrites, readableAfterWrites, readDuringWrites, readerFramesAtFirstWrite;

    /**
     * Fault injection for tests (package-private; nothing else sets it): the errno the next write to the TAP
     * fails with instead of reaching the kernel, or 0 to write. The kernel gives EIO for itself (link down);
     * EAGAIN and ENOBUFS, which a loaded kernel gives, cannot be had on demand.
     */
    volatile java.util.function.IntSupplier writeFault = () -> 0;

    private TapPort(L2Switch sw, TapDevice tap, Set<TunOffload> offloads, PollGroup group) {
        this.tap = tap;
        this.name = "tap:" + tap.name();
        this.offloads = offloads == null ? offerDefault(tap) : set(tap, offloads);
        this.takes = takesOf(this.offloads);
        Arena arena = Arena.ofAuto();
        this.rxBuffer = arena.allocate(VNET + MAX_FRAME + 1, 8);   // one more: a longer frame shows as too long, not cut
        this.zeroHeader = arena.allocate(VNET, 8);
        this.txHeader = arena.allocate(VNET, 8);
        this.txBuffer = arena.allocate(VNET + MAX_FRAME, 8);
        this.epoll = Epoll.create(2);
        this.probe = Epoll.create(1);
        this.look = Epoll.create(1);
        this.stop = EventFd.create();
        try {
            epoll.add(tap, Epoll.IN, TAP_TOKEN);
            epoll.add(stop, Epoll.IN, STOP_TOKEN);
            probe.add(tap, Epoll.IN, TAP_TOKEN);
            look.add(tap, Epoll.IN, TAP_TOKEN);
        } catch (RuntimeException e) {
            epoll.close();
            probe.close();
            look.close();
            stop.close();
            throw e;
        }
        this.port = sw.join(this);
        if (group == null) {
            this.readWorker = null;
            this.reader = Thread.ofPlatform().daemon().name("jvbus-" + name + "-reader").unstarted(this::readLoop);
            reader.start();
        } else {
            this.reader = null;
            this.readWorker = QueueWorker.reading("jvbus-" + name + "-reads", new GroupReads(), List.of(tap), group, this::readsFailed)
                    .whenGone(this::finishClose);
            readWorker.start();
        }
    }

    /**
     * The TAP's reads as a member of a {@link PollGroup}: the group's thread, which also serves the tx queue of the
     * device this TAP is wired to, reads the TAP in its round, right after that queue's batch has written into it,
     * as QEMU's main loop does both in one thread. No reader thread of our own to wake per ACK (bench-guest counted
     * ~16 wake-ups per MB for it). The TAP fd is in the group's epoll level-triggered, never read by the wait.
     */
    private final class GroupReads implements QueueService {
        @Override
        public boolean poll() {
            if (closed.get() || readerFailed) return false;
            boolean ok;
            long before = fromKernelFrames + offloadDrops;
            try {
                ok = drainOnce();
            } finally {
                rxBatch.flush();
            }
            if (!ok) {
                readWorker.stop(Duration.ZERO);   // from its own thread: only asks (the fd would stay readable for ever)
                return false;
            }
            return fromKernelFrames + offloadDrops != before;
        }

        /**
         * The group's spin looks at the TAP too (one epoll_wait(0) per look), so that an ACK arriving while it spins is
         * taken at once, not after the spin. Costs nothing while the spin is at 0 (bench-guest: it stayed there).
         */
        @Override
        public boolean hasWork() {
            return !closed.get() && !readerFailed && look.wait(0) > 0;
        }

        /** Nothing to arm: the TAP is in the group's epoll, level-triggered, and wakes it while readable. */
        @Override
        public boolean armDoorbell() { return false; }

        @Override
        public void disarmDoorbell() {}
    }

    private void readsFailed(dev.jvbus.core.ring.QueueFault f) {
        readerFailed = true;
        LOG.log(System.Logger.Level.ERROR, "{0}: reading the TAP failed ({1}); rx stopped, deliveries now drop as PORT_DOWN", name, f.getMessage());
    }

    /**
     * Joins {@code sw} with {@code tap}, which this port now owns (closes it on {@link #close()}), with
     * {@link #DEFAULT_OFFLOADS} or as many of them as the kernel has.
     */
    public static TapPort open(L2Switch sw, TapDevice tap) {
        return open(sw, tap, null);
    }

    /**
     * Joins {@code sw} with {@code tap} and exactly {@code offloads} ({@code TUNSETOFFLOAD}): what the kernel
     * may hand us, and what the port takes from the switch (an empty set: bare, complete frames both ways).
     *
     * @throws dev.jvbus.core.sys.TapException if the kernel refuses the set
     */
    public static TapPort open(L2Switch sw, TapDevice tap, Set<TunOffload> offloads) {
        return open(sw, tap, offloads, null);
    }

    /**
     * As {@link #open(L2Switch, TapDevice, Set)}, the TAP read by {@code group}'s thread (null: a reader thread of its
     * own): put it in the group that serves the tx queue of the device it answers, and one thread writes that device's
     * frames into the TAP and reads what the kernel answers, with no thread of ours woken in between. The TAP does not
     * count in the group's size, so the device's queue still picks that group after it.
     */
    public static TapPort open(L2Switch sw, TapDevice tap, Set<TunOffload> offloads, PollGroup group) {
        try {
            return new TapPort(sw, tap, offloads, group);
        } catch (RuntimeException e) {
            tap.close();
            throw e;
        }
    }

    private static Set<TunOffload> set(TapDevice tap, Set<TunOffload> offloads) {
        tap.setOffload(offloads);
        return Set.copyOf(offloads);
    }

    /** The default set, less USO on a kernel without it (before 6.2), less everything on one without TSO. */
    private static Set<TunOffload> offerDefault(TapDevice tap) {
        EnumSet<TunOffload> want = EnumSet.copyOf(DEFAULT_OFFLOADS);
        try {
            return set(tap, want);
        } catch (TapException e) {
            want.removeAll(EnumSet.of(TunOffload.USO4, TunOffload.USO6));
        }
        try {
            return set(tap, want);
        } catch (TapException e) {
            LOG.log(System.Logger.Level.WARNING, "{0}: the kernel refused offloads {1} ({2}); the TAP carries bare frames",
                    tap.name(), want, e.getMessage());
            return set(tap, Set.of());
        }
    }

    /** The {@link FrameOffload} TAKES_* bits of a TUN offload set (the same numbers as TUN_F_*). */
    static int takesOf(Set<TunOffload> offloads) {
        int m = 0;
        for (TunOffload o : offloads) m |= switch (o) {
            case CSUM -> FrameOffload.TAKES_CSUM;
            case TSO4 -> FrameOffload.TAKES_TSO4;
            case TSO6 -> FrameOffload.TAKES_TSO6;
            case TSO_ECN -> FrameOffload.TAKES_TSO_ECN;
            case UFO -> FrameOffload.TAKES_UFO;
            case USO4 -> FrameOffload.TAKES_USO4;
            case USO6 -> FrameOffload.TAKES_USO6;
        };
        return m;
    }

    /** The offloads set on the TAP (what the kernel may hand us, and what we pass it as they are). */
    public Set<TunOffload> offloads() { return offloads; }

    @Override
    public int offloadsTaken() { return takes; }

    /**
     * Creates a TAP named {@code ifname} in {@code namespace} (see {@link TapDevice#create}) and joins
     * it to {@code sw}. With {@code up} the link is set up; addresses stay the operator's.
     */
    public static TapPort create(L2Switch sw, String ifname, NetNamespace namespace, boolean up) {
        return open(sw, TapDevice.create(ifname, namespace, up));
    }

    @Override
    public String name() { return name; }

    @Override
    public PortBackend describe() { return new PortBackend.Tap(tap.name()); }

    public TapDevice device() { return tap; }

    public SwitchPort switchPort() { return port; }

    /** True while the reader thread runs (false after {@link #close()} or a fatal read error). */
    public boolean readerAlive() { return reader != null ? reader.isAlive() : readWorker.isAlive(); }

    @Override
    public DropReason deliver(MemorySegment frame, long offset, int length) {
        return deliver(frame, offset, length, FrameOffload.NONE);
    }

    @Override
    public DropReason deliver(MemorySegment frame, long offset, int length, FrameOffload offload) {
        if (readerFailed || closed.get()) return DropReason.PORT_DOWN;
        if (length > MAX_FRAME) return DropReason.TOO_BIG;
        MemorySegment header = zeroHeader;
        if (!offload.isPlain()) {
            offload.writeVnet(txHeader, 0);   // num_buffers (bytes 10, 11) stays zero
            header = txHeader;
        }
        // The reader's count, read racily (a diagnostic) before the batch's first write: did the reader take frames
        // while this batch wrote (woken on our CPU, it can preempt us on our way out of the write)?
        if (writtenSinceFlush == 0) readerFramesAtFirstWrite = fromKernelFrames;
        int n;
        int injected = writeFault.getAsInt();
        if (injected != 0) {
            n = -injected;
        } else if (frame.isNative()) {
            n = tap.write(header, 0, frame, offset, length);
        } else {
            MemorySegment.copy(header, 0, txBuffer, 0, VNET);
            MemorySegment.copy(frame, offset, txBuffer, VNET, length);
            n = tap.write(txBuffer, 0, VNET + length);
        }
        if (n >= 0) {
            writtenSinceFlush++;
            toKernelFrames++;
            toKernelBytes += length;
            return null;
        }
        return switch (-n) {
            case Errno.EAGAIN -> { wouldBlock++; yield DropReason.BACKEND_BUSY; }
            case Errno.EIO -> { linkDown++; yield DropReason.PORT_DOWN; }
            default -> { writeErrors++; yield DropReason.BACKEND_ERROR; }
        };
    }

    /**
     * Turns on (or off) the measurement behind {@link TapStats#readableAfterWrites}: at the end of each batch of writes,
     * one {@code epoll_wait} with no timeout. Off by default, since it costs the writing thread a syscall per batch.
     */
    public void probeAfterWrites(boolean on) {
        probeAfterWrites = on;
    }

    /**
     * The end of a sender's batch (or of a lone delivery): with {@link #probeAfterWrites} on, looks once (epoll_wait
     * with no timeout) whether, after this batch's writes, the kernel has already queued frames for us, e.g. the
     * replies its receive path sent in our writes' context ({@link TapStats#readableAfterWrites}). Only a measurement:
     * the reader thread drains them. It showed (benchmarks/README.md, bench-guest) that under guest TCP about one batch
     * in six finds an ACK waiting (one in three counting those the reader took meanwhile): the host's receiver sends
     * most ACKs when it reads, after our write, so a writer that drained the TAP itself would spare the reader few
     * wake-ups.
     */
    @Override
    public int flush() {
        if (writtenSinceFlush == 0) return 0;
        writtenSinceFlush = 0;
        if (!probeAfterWrites || readerFailed || closed.get()) return 0;
        flushesAfterWrites++;
        if (probe.wait(0) > 0) readableAfterWrites++;
        else if (fromKernelFrames != readerFramesAtFirstWrite) readDuringWrites++;
        return 0;   // every frame was written (or dropped, counted) in its deliver
    }

    private void readLoop() {
        try {
            while (!closed.get()) {
                int ready = epoll.wait(-1);
                boolean drain = false;
                for (int i = 0; i < ready; i++) {
                    if (epoll.token(i) == STOP_TOKEN) return;
                    drain = true;
                }
                if (drain && !drainTap()) return;
            }
        } catch (RuntimeException e) {
            readerFailed = true;
            LOG.log(System.Logger.Level.ERROR, name + ": reader stopped", e);
        } finally {
            finishClose();   // first here: close() closes the fds; second (close() left us behind): we do
        }
    }

    /**
     * Reads until the TAP is empty, publishing at the receivers once per {@link #RX_BATCH} frames and when it is;
     * false after a read error that ends this port's rx side.
     */
    private boolean drainTap() {
        try {
            return drainBatches();
        } finally {
            rxBatch.flush();   // also when the drain ends early: what was delivered becomes visible
        }
    }

    private boolean drainBatches() {
        while (!closed.get()) {
            int n = readBatch();
            if (n < 0) return false;
            if (n < RX_BATCH) return true;   // the TAP is empty
            rxBatch.flush();
        }
        return false;   // closed meanwhile: stop reading
    }

    /** One batch for a poll group's round (bounded, so the group's other members get their turn): false after a read error. */
    private boolean drainOnce() {
        return readBatch() >= 0;
    }

    /**
     * Reads at most {@link #RX_BATCH} frames into {@link #rxBatch} (the caller flushes it): how many reads it made
     * before the TAP was empty (RX_BATCH: maybe more there), or -1 after a read error that ends this port's rx side
     * (or once closed).
     */
    private int readBatch() {
        int inBatch = 0;
        while (inBatch < RX_BATCH) {
            if (closed.get()) return -1;
            int n = tap.read(rxBuffer, 0, VNET + MAX_FRAME + 1);
            if (n == -Errno.EAGAIN) return inBatch;
            if (n == -Errno.EINTR) continue;
            if (n < 0) {
                // The interface was deleted under us (EBADFD) or the fd broke: the fd stays readable
                // for ever, so stop rather than spin. Deliveries report PORT_DOWN from now on.
                readErrors++;
                readerFailed = true;
                LOG.log(System.Logger.Level.ERROR, "{0}: {1}; rx stopped, deliveries now drop as PORT_DOWN", name,
                        -n == EBADFD ? "the interface was deleted (EBADFD)" : "reading the TAP failed with errno " + -n);
                return -1;
            }
            inBatch++;               // a read counts for the batch bound whatever became of its frame
            if (n < VNET) continue;  // cannot happen with a vnet header set; nothing to forward
            int len = n - VNET;
            // The kernel's header, checked as any peer's is (it only asks for what TUNSETOFFLOAD allowed).
            if (len > MAX_FRAME || rxOffload.readVnet(rxBuffer, 0).check(rxBuffer, VNET, len) != FrameOffload.OK) {
                offloadDrops++;
                continue;
            }
            fromKernelFrames++;
            fromKernelBytes += len;
            port.send(rxBuffer, VNET, len, rxMeta);
        }
        return inBatch;
    }

    /** This port's TAP-side counters (the switch port keeps the switch-side ones: {@code switchPort().stats()}). */
    public TapStats stats() {
        return new TapStats(name, fromKernelFrames, fromKernelBytes, offloadDrops, readErrors,
                toKernelFrames, toKernelBytes, wouldBlock, linkDown, writeErrors, flushesAfterWrites, readableAfterWrites, readDuringWrites);
    }

    /**
     * Stops the reader, leaves the switch (a delivery in progress finishes first, within the switch's
     * stall bound), then closes the TAP fd, which removes the interface. Idempotent. Returns within
     * about {@link #READER_STOP_BOUND} plus the stall bound whatever the reader is stuck in; a reader
     * still running then is left behind (logged) and closes the fds itself when it returns.
     */
    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) return;
        if (readWorker != null) {
            // Bounded as the reader's join: a group thread stuck in a delivery is left behind, and its
            // whenGone (finishClose) closes the fds when it lets this member go.
            readWorker.stop(READER_STOP_BOUND);
            port.leave();
            finishClose();
            return;
        }
        stop.signal();
        boolean interrupted = false;
        long deadline = System.nanoTime() + READER_STOP_BOUND.toNanos();
        while (reader.isAlive() && Thread.currentThread() != reader) {
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                LOG.log(System.Logger.Level.WARNING, "{0}: the reader did not stop within {1} ms (stuck sending into the switch);"
                        + " left behind: it closes the TAP when it returns", name, String.valueOf(READER_STOP_BOUND.toMillis()));
                break;
            }
            try {
                reader.join(Math.max(1, left / 1_000_000));
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        port.leave();
        finishClose();
        if (interrupted) Thread.currentThread().interrupt();
    }

    /** The second of close() and the reader's exit to get here closes the fds, once. */
    private void finishClose() {
        if (!oneDone.compareAndSet(false, true)) {
            tap.close();
            epoll.close();
            probe.close();
            look.close();
            stop.close();
        }
    }

    @Override
    public String toString() {
        return "TapPort[" + tap + " on " + port.network().name() + "]";
    }

    /**
     * TAP-side counters: frames from the kernel into the switch, frames from the kernel whose vnet
     * header did not check ({@link FrameOffload#check}), read errors; frames into the kernel and
     * the writes refused, by cause; the batches of writes ({@code flushesAfterWrites}) and how many of them found the TAP
     * readable right after their writes ({@code readableAfterWrites}: frames the kernel queued in the writes' context), and
     * of the others, how many saw the reader take frames between their first write and their end ({@code readDuringWrites},
     * approximate: the writer reads the reader's count without a fence), an upper bound of what the reader won from them.
     */
    public record TapStats(String port, long fromKernelFrames, long fromKernelBytes, long offloadDrops, long readErrors,
                           long toKernelFrames, long toKernelBytes, long wouldBlock, long linkDown, long writeErrors,
                           long flushesAfterWrites, long readableAfterWrites, long readDuringWrites) {}
}
