package dev.jvbus.model.venet;

import static dev.jvbus.model.venet.VenetWire.U16;
import static dev.jvbus.model.venet.VenetWire.U32;
import static dev.jvbus.model.venet.VenetWire.U64;

import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.memory.GuestMemoryException;
import dev.jvbus.core.memory.MemoryRegion;
import dev.jvbus.core.spi.DataPathRun;
import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.ring.QueueService;
import dev.jvbus.core.ring.ioq.IoqDevice;
import dev.jvbus.net.SwitchPort;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The tx worker's work: take frames the driver put on the tx ring, hand them to the switch,
 * complete the descriptors (with their own length when sent, 0 when dropped), and write the event queue
 * (link-state events queued by control, a tx-complete event per frame when TXC is granted).
 * Signals follow the shm-signal rules: this side's signals stay masked while the worker runs,
 * one notify per batch (and every {@link #BATCH} frames) to the driver.
 *
 * <p>With TXC the worker takes an event buffer before each tx descriptor: no event buffer means
 * no transmit (backpressure), so a tx-complete is never lost. Worker thread only.
 */
final class VenetTx implements QueueService {
    static final int BATCH = 64;

    private final VenetFunction f;
    private final IoqDevice tx;
    private final IoqDevice evq;     // null when the driver set up no event queue
    private final GuestMemory memory;
    private final SwitchPort port;
    private final MemorySegment frame;     // gather buffer for SG frames (maxFrame bytes)
    private final MemorySegment sgDesc;    // the venet_sg descriptor, copied before it is checked
    private final int maxFrame;
    private final DataPathRun run;

    private IoqDevice.Buffer evBuf;        // an event buffer taken and not yet written
    private long cookie;                   // of the frame just handled (for TXC)

    VenetTx(VenetFunction f, IoqDevice tx, IoqDevice evq, GuestMemory memory, SwitchPort port,
            MemorySegment frame, MemorySegment sgDesc, int maxFrame, DataPathRun run) {
        this.f = f;
        this.tx = tx;
        this.evq = evq;
        this.memory = memory;
        this.port = port;
        this.frame = frame;
        this.sgDesc = sgDesc;
        this.maxFrame = maxFrame;
        this.run = run;
    }

    @Override
    public boolean poll() throws QueueFault {
        boolean link = f.link;
        boolean did = false;
        int events = 0;
        if (evq != null) {
            evq.signal().beginPass();
            events += linkEvents();
        }
        if (link) {
            boolean sg = f.sg;
            boolean txc = f.evqTxc && evq != null;
            tx.signal().beginPass();
            int n = 0;
            while (true) {
                if (txc && !takeEventBuffer()) break;
                IoqDevice.Buffer b = tx.poll();
                if (b == null) break;
                long sent = sg ? transmitSg(b) : transmitFlat(b);
                // The send may have been long (stuck in a delivery into a wedged device) and this worker
                // left behind by a reset: then the ring belongs to the next run, not to us.
                if (!run.isCurrent()) return false;
                tx.complete(sent > 0 ? b.length() : 0);     // the descriptor's length when sent, 0 when dropped
                if (txc) {
                    writeTxc(cookie);
                    events++;
                }
                if ((++n & (BATCH - 1)) == 0) notifyDriver(txc, events);
            }
            if (n > 0) {
                if (!txc) tx.notifyDriver();
                did = true;
            }
        }
        if (events > 0) {
            evq.notifyDriver();
            did = true;
        }
        if (did) return true;
        boolean again = false;
        if (link) again = tx.signal().endPass();
        if (evq != null) again |= evq.signal().endPass();
        return again;
    }

    private void notifyDriver(boolean txc, int events) throws QueueFault {
        if (txc) {
            if (events > 0) evq.notifyDriver();
        } else {
            tx.notifyDriver();
        }
    }

    @Override
    public boolean hasWork() {
        return (f.link && tx.signal().isDirty()) || (evq != null && evq.signal().isDirty());
    }

    @Override
    public boolean armDoorbell() {
        boolean work = false;
        if (f.link) work = tx.signal().enable();
        if (evq != null) work |= evq.signal().enable();
        return work;
    }

    @Override
    public void disarmDoorbell() {
        tx.signal().disable();
        if (evq != null) evq.signal().disable();
    }

    // ---------------------------------------------------------------- transmit

    private long transmitFlat(IoqDevice.Buffer b) {
        long len = b.length();
        cookie = b.cookie();
        if (len < VenetWire.ETH_HLEN) {
            f.txDropsRunt++;
            return 0;
        }
        if (len > maxFrame) {
            f.txDropsOversize++;
            return 0;
        }
        port.send(b.segment(), b.offset(), (int) len);
        f.txFrames++;
        f.txBytes += len;
        return len;
    }

    /** The descriptor holds a venet_sg: header and iov list; the frame is the iovs in order. */
    private long transmitSg(IoqDevice.Buffer b) throws QueueFault {
        long descLen = b.length();
        cookie = b.cookie();
        if (descLen < VenetWire.sgDescSize(1) || descLen > sgDesc.byteSize()) {
            f.txDropsBadHeader++;
            return 0;
        }
        // Copy first: the guest cannot change what was checked.
        MemorySegment.copy(b.segment(), b.offset(), sgDesc, 0, descLen);
        cookie = sgDesc.get(U64, VenetWire.SG_COOKIE);
        int flags = sgDesc.get(U32, VenetWire.SG_FLAGS);
        long len = Integer.toUnsignedLong(sgDesc.get(U32, VenetWire.SG_LEN));
        int count = sgDesc.get(U32, VenetWire.SG_COUNT);
        if (count < 1 || count > VenetWire.SG_MAX_IOVS || descLen < VenetWire.sgDescSize(count)
                || (flags & ~VenetWire.SG_FLAG_NEEDS_CSUM) != 0) {      // GSO/ECN were never granted
            f.txDropsBadHeader++;
            return 0;
        }
        if (len < VenetWire.ETH_HLEN) {
            f.txDropsRunt++;
            return 0;
        }
        if (len > maxFrame) {
            f.txDropsOversize++;
            return 0;
        }
        long total = 0;
        for (int i = 0; i < count; i++) total += Integer.toUnsignedLong(sgDesc.get(U32, iov(i) + VenetWire.IOV_LEN));
        if (total != len) {
            f.txDropsBadHeader++;
            return 0;
        }
        boolean csum = (flags & VenetWire.SG_FLAG_NEEDS_CSUM) != 0;
        int start = Short.toUnsignedInt(sgDesc.get(U16, VenetWire.SG_CSUM_START));
        int field = Short.toUnsignedInt(sgDesc.get(U16, VenetWire.SG_CSUM_OFFSET));
        if (csum && (long) start + field + 2 > len) {
            f.txDropsBadHeader++;
            return 0;
        }
        try {
            if (count == 1 && !csum) {       // one piece, nothing to change: straight from guest memory
                long ptr = sgDesc.get(U64, iov(0) + VenetWire.IOV_PTR);
                MemoryRegion r = memory.region(ptr, len);
                port.send(r.segment(), ptr - r.guestAddress(), (int) len);
            } else {
                long pos = 0;
                for (int i = 0; i < count; i++) {
                    long ilen = Integer.toUnsignedLong(sgDesc.get(U32, iov(i) + VenetWire.IOV_LEN));
                    memory.copyFromGuest(sgDesc.get(U64, iov(i) + VenetWire.IOV_PTR), frame, pos, ilen);
                    pos += ilen;
                }
                if (csum) {
                    InternetChecksum.finish(frame, start, field, (int) len);
                    f.txChecksums++;
                }
                port.send(frame, 0, (int) len);
            }
        } catch (GuestMemoryException e) {
            throw new QueueFault(VenetWire.QUEUE_TX, QueueFault.Reason.BUFFER_OUT_OF_RANGE,
                    "venet_sg in descriptor " + b.index() + ": " + e.getMessage());
        }
        f.txFrames++;
        f.txBytes += len;
        return len;
    }

    private static long iov(int i) {
        return VenetWire.SG_IOV + (long) VenetWire.IOV_SIZE * i;
    }

    // ---------------------------------------------------------------- events

    private boolean takeEventBuffer() throws QueueFault {
        if (evBuf != null) return true;
        IoqDevice.Buffer e = evq.poll();
        if (e == null) return false;
        if (e.length() < VenetWire.EVQ_EVSIZE)
            throw new QueueFault(VenetWire.QUEUE_EVQ, QueueFault.Reason.LENGTH_OVERFLOW,
                    "event buffer " + e.index() + " holds " + e.length() + " bytes, venet events need " + VenetWire.EVQ_EVSIZE);
        evBuf = e;
        return true;
    }

    private int linkEvents() throws QueueFault {
        int n = 0;
        int state;
        while ((state = f.peekLinkEvent()) >= 0 && takeEventBuffer()) {
            MemorySegment s = evBuf.segment();
            long o = evBuf.offset();
            header(s, o, VenetWire.EV_LINKSTATE_SIZE, VenetWire.EVENT_LINKSTATE);
            s.set(ValueLayout.JAVA_BYTE, o + VenetWire.EV_LINKSTATE_STATE, (byte) state);
            s.set(ValueLayout.JAVA_BYTE, o + VenetWire.EV_LINKSTATE_STATE + 1, (byte) 0);
            s.set(U16, o + VenetWire.EV_LINKSTATE_STATE + 2, (short) 0);
            evBuf = null;
            evq.complete(VenetWire.EV_LINKSTATE_SIZE);
            f.popLinkEvent();
            f.eventsLinkstate++;
            n++;
        }
        return n;
    }

    private void writeTxc(long txCookie) throws QueueFault {
        MemorySegment s = evBuf.segment();
        long o = evBuf.offset();
        header(s, o, VenetWire.EV_TXC_SIZE, VenetWire.EVENT_TXC);
        s.set(U32, o + VenetWire.EV_TXC_TXQID, 0);
        s.set(U64, o + VenetWire.EV_TXC_COOKIE, txCookie);
        evBuf = null;
        evq.complete(VenetWire.EV_TXC_SIZE);
        f.eventsTxc++;
    }

    private static void header(MemorySegment s, long o, int size, int id) {
        s.set(U32, o + VenetWire.EV_FLAGS, 0);
        s.set(U32, o + VenetWire.EV_SIZE, size);
        s.set(U32, o + VenetWire.EV_ID, id);
    }
}
