package dev.jvbus.model.virtionet;

import dev.jvbus.core.memory.CacheLines;
import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.memory.HostMemory;
import static dev.jvbus.model.virtionet.NetHeader.*;

import dev.jvbus.core.feature.VirtioFeatures;
import dev.jvbus.core.spi.DataPathRun;
import dev.jvbus.core.spi.DeviceContext;
import dev.jvbus.core.spi.DeviceFault;
import dev.jvbus.core.spi.DeviceFunction;
import dev.jvbus.core.spi.QueueBinding;
import dev.jvbus.core.spi.QueueSet;
import dev.jvbus.core.memory.MappedMemoryFault;
import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.ring.QueueService;
import dev.jvbus.core.spi.PollGroups;
import dev.jvbus.core.ring.QueueWorker;
import dev.jvbus.core.doorbell.DoorbellWait;
import dev.jvbus.core.state.QueueState;
import dev.jvbus.core.ring.virtio.DescriptorChain;
import dev.jvbus.core.ring.virtio.SplitVirtqueue;
import dev.jvbus.core.state.ModelState;
import dev.jvbus.net.DropReason;
import dev.jvbus.net.FrameMeta;
import dev.jvbus.net.FrameOffload;
import dev.jvbus.net.NetworkException;
import dev.jvbus.net.MacAddress;
import dev.jvbus.net.NetPort;
import dev.jvbus.net.Networks;
import dev.jvbus.net.PortBackend;
import dev.jvbus.net.RxGate;
import dev.jvbus.net.SendBatch;
import dev.jvbus.net.SwitchPort;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;

/**
 * One virtio-net device's behaviour.
 *
 * <p>Threads. Each tx queue belongs to one {@link QueueWorker} ("&lt;container&gt;/&lt;devid&gt;-tx", "-tx1", ...),
 * served by one of the container's poll groups (a thread per core going round every device's tx queues, as
 * a DPDK PMD thread does; the default) or, with {@code poll=own}, by a thread of that name; with
 * {@code busy-poll=on} that thread never sleeps (a dedicated core):
 * it pops a batch, hands each frame to the switch (which copies it straight into the receivers' rx
 * buffers), pushes the batch used with length 0 and makes one notify decision (a super-frame, or each
 * {@link #TX_COMPLETE_BYTES} of a batch, is published and decided on at once). Tx queues share nothing on
 * the hot path: each has its own scratch, counters and {@link SwitchPort.Sender} into the switch. The rx
 * queues have no worker: they are touched only inside {@link #deliver}, which the switch serialises per
 * port, so the driver's new rx buffers are noticed when a frame arrives (rx kicks are suppressed).
 *
 * <p>Multiqueue (VIRTIO_NET_F_MQ, {@code queue-pairs}). A delivery picks its rx queue by the frame's
 * {@link FlowHash} among the rx queues that take frames now ({@link #rxTargets}: running, enabled, and
 * within the pairs the driver set with MQ_VQ_PAIRS_SET when our control queue runs; a vhost-user front-end
 * serves its control queue itself and says which rings carry traffic with SET_VRING_ENABLE). The table is
 * rebuilt on the control path whenever one of those changes; the hot path reads it once per frame. The control queue,
 * when CTRL_VQ is negotiated, has a worker of its own ("-ctrl", {@link ControlQueue}); what its commands
 * change lives in {@link NetControl}, which outlives resets and is saved with the device. Control-plane
 * calls come from the bus, one at a time.
 *
 * <p>Stopping deliveries. {@link #quiesce} and {@link #reset} close the {@link RxGate} and wait, within
 * its bound, for a delivery in progress to leave, so a saved rx ring is stable; deliveries meanwhile
 * drop as PORT_DOWN and the switch counts them. Ring faults found on either path are reported through
 * the run's {@link DataPathRun}, which never blocks the finding thread and is ignored once the run is
 * over: a delivery runs under the port's lock, a worker may be waited for by a pause or reset holding
 * the device's lock, so reporting in place could deadlock, and a late report must not mark the next
 * driver's session. The run also fences a worker left behind by a reset (stuck in a delivery into a
 * wedged device): back from it, the worker finds its run over and touches no ring.
 *
 * <p>One queue at a time ({@link #resetsQueues}): rx and tx share only the port, so either stops
 * (its position saved) and starts again (from a position) while the other runs, as vhost-user's
 * per-ring messages and virtio 1.2's queue reset need. A stopped rx drops deliveries as PORT_DOWN.
 *
 * <p>Offloads. A tx frame goes to the switch with its header's meaning ({@link FrameOffload}: a partial
 * checksum, a TSO/USO super-frame the driver was granted with HOST_*), checked once by
 * {@link FrameOffload#check}; a bad one is a counted drop. On rx the port takes what the driver negotiated
 * (GUEST_CSUM, GUEST_TSO4/6, GUEST_ECN, GUEST_USO4/6, see {@link VirtioNetFeatures#rxOffloads}); the switch
 * segments and completes checksums for a driver that took less, and the header is written as it comes.
 *
 * <p>Allocation: none per frame. The tx gather buffer, header scratch and merge bookkeeping are made
 * once per device; a frame that sits in one descriptor after its header goes to the switch without a copy.
 */
public final class VirtioNetDevice implements DeviceFunction, NetPort {
    /** Buffers taken per tx batch before publishing and letting ctrl/rx breathe. */
    static final int TX_BATCH = 64;
    private static final System.Logger LOG = System.getLogger(VirtioNetDevice.class.getName());
    /**
     * Buffers of its tx ring a worker reads ahead ({@link SplitVirtqueue#touchAhead}) at the start of a batch and
     * whenever it has taken those: their descriptors' and frames' first lines, which the front-end wrote on its own
     * core, then miss together instead of one after another (bench-switch at 64 B, session 11: +10 %; 16 and 64
     * measured the same). Whether it pays depends on the machine's state: each worker measures it
     * ({@link ReadAheadChoice}).
     */
    static final int TOUCH_AHEAD = 32;
    /**
     * Bytes a tx batch sends before it publishes what it completed so far, without waiting for the batch's end; a
     * super-frame (TSO/USO) is completed at once whatever its size. Why: Linux frees a tx skb only when its buffer
     * comes back used, and TCP small queues hold a socket to about a millisecond of bytes not yet freed, so a
     * 64 KiB super-frame held back while the rest of the batch is written to a TAP (tens of microseconds each)
     * is a socket held back. Small frames keep their one publish per batch (64 x 64 B is 4 KiB; 1500-byte frames
     * publish every 22).
     */
    static final int TX_COMPLETE_BYTES = 32 * 1024;
    /** Ethernet header plus one VLAN tag: a frame may be this much longer than the MTU. */
    static final int L2_OVERHEAD = 18;

    private final DeviceContext context;
    private final VirtioNetParams params;
    private final String name;

    // ---- set by start(), cleared by reset(); read by the workers and deliveries after the gate opens ----
    /** Per pair, made once (each is a few fields and chains); a pair's rx ring is null while it does not run. */
    private final RxQueue[] rxq;
    /** Per pair, made when the pair first starts (its gather buffer is 64 KiB), kept across resets with its counters. */
    private final TxQueue[] txq;
    /** The rx queues frames go to now, in pair order (see the class comment); replaced whole, read once per frame. */
    private volatile RxQueue[] rxTargets = new RxQueue[0];
    private SwitchPort port;
    private int hdrLen = SIZE;
    private boolean mergeable;
    private boolean indirect, eventIdx, inOrder;   // negotiated ring features, kept for a queue started alone
    private int maxFrame;
    private int txTakes;                 // tx workers: the offloads the driver may ask of us (FrameOffload TAKES_*)
    private int ctrlIndex = VirtioNetModel.CTRL;   // where this driver has its control queue (2, or 2 x pairs with MQ)
    private DataPathRun run = DataPathRun.NONE;   // the run started last; faults are reported through it

    private long deliveryLogAddress;      // the driver's delivery log (0: none); control plane, read at start
    private DeliveryLog deliveryLog;      // made at start, one for all rx queues; used under the port's delivery lock
    private long controlRecordAddress;    // the driver's control record (0: none); control plane, read at start

    private final RxGate rxGate;
    /**
     * Between {@link #quiesce} and {@link #resume}: a queue stopped meanwhile ({@link #stopQueue}) leaves the rx gate
     * closed, since the pause holds every ring still. Control plane only (under the device's lock).
     */
    private boolean quiesced;
    /** What the driver set on the control queue (rx mode, MAC, guest offloads, announce); outlives resets. */
    private final NetControl control;
    private ControlQueue ctrl;            // set by start() when CTRL_VQ is negotiated and the driver set the queue up
    private boolean servesCtrl;           // CTRL_VQ negotiated with us: the pairs the driver set bound the rx targets
    private QueueWorker ctrlWorker;
    private boolean rxBroken;            // delivery side only: the rx ring faulted, waiting for the reset
    /** Control plane: the announcement frame ({@link #announce}), made once, and its way into the switch. */
    private final MemorySegment announceFrame = MemorySegment.ofArray(new byte[dev.jvbus.net.RarpAnnouncement.LENGTH]);
    private SwitchPort.Sender announceSender;   // control plane, under announceFrame's monitor
    private long announcementsSent;      // control plane

    // ---- delivery side only (under the port's delivery lock) ----
    private final MemorySegment rxHeader = MemorySegment.ofArray(new byte[SIZE]);
    private final int[] mergeHeads = new int[VirtioNetModel.QUEUE_MAX];
    private final int[] mergeLens = new int[VirtioNetModel.QUEUE_MAX];
    /**
     * Frames pushed to rx and not yet published: a sender's batch publishes them at its end ({@link #flush}).
     * Under the port's delivery lock; the control plane reads and clears it only with the rx gate closed.
     */
    private boolean rxPending;
    /** Copies some rx queue put off ({@link RxCopies}) since the last {@link #endRun}; same rules as {@link #rxPending}. */
    private boolean rxDeferred;

    // ---- counters: plain fields, each written by one side, read racily by metrics (per queue: in RxQueue, TxQueue) ----
    long rxReplaysSkipped;                                                   // deliveries: replays the delivery log said we had
    final long[] rxDrops = new long[DropReason.values().length];              // deliveries
    private long notificationsBefore;                                        // control plane: closed queues' notifications
    private volatile long workersLeftBehind;                                 // control plane: tx workers a reset could not stop

    VirtioNetDevice(DeviceContext context, VirtioNetParams params) {
        this.context = context;
        this.params = params;
        this.name = context.container() + "/" + Integer.toUnsignedString(context.devid()) + ":virtio-net";
        this.rxGate = new RxGate(name, this::rxMemory);   // a close that gives up keeps that memory mapped for the stuck delivery
        this.rxq = new RxQueue[params.queuePairs()];
        for (int n = 0; n < rxq.length; n++) rxq[n] = new RxQueue(n);
        this.txq = new TxQueue[params.queuePairs()];
        context.config().write("mac", MacAddress.toBytes(params.mac()));
        context.config().write("status", VirtioNetModel.STATUS_LINK_UP);
        context.config().write("max_virtqueue_pairs", params.queuePairs());
        context.config().write("mtu", params.mtu());
        // On its network from hotplug on, with its MAC in the switch's table: an operator sees the port
        // (and scripts can rely on it) before any driver comes; frames for it wait at the closed rx gate.
        this.port = params.macSpoofCheck().join(Networks.of(context).getOrCreate(params.network()), this, params.mac());
        this.control = new NetControl(name, context.config(), params.mac(), () -> port, this::retarget);
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public PortBackend describe() {
        return new PortBackend.Device(Integer.toUnsignedLong(context.devid()), VirtioNetModel.TYPE);
    }

    public VirtioNetParams params() {
        return params;
    }

    // ================================================================ lifecycle

    @Override
    public void start(QueueSet queues) throws DeviceFault {
        long logAddress = deliveryLogAddress, recordAddress = controlRecordAddress;
        if (anyRunning()) reset();
        deliveryLogAddress = logAddress;
        controlRecordAddress = recordAddress;
        long f = queues.features();
        boolean v1 = VirtioFeatures.VERSION_1.in(f);
        mergeable = VirtioNetFeatures.MRG_RXBUF.in(f);
        hdrLen = v1 || mergeable ? SIZE : LEGACY_SIZE;
        int mtu = VirtioNetFeatures.MTU.in(f) ? params.mtu() : VirtioNetParams.DEFAULT_MTU;
        maxFrame = Math.min(mtu, params.mtu()) + L2_OVERHEAD;
        txTakes = VirtioNetFeatures.txOffloads(f);
        indirect = VirtioFeatures.INDIRECT_DESC.in(f);
        eventIdx = VirtioFeatures.EVENT_IDX.in(f);
        inOrder = VirtioFeatures.IN_ORDER.in(f);
        ctrlIndex = VirtioNetModel.ctrlQueue(f, rxq.length);
        servesCtrl = VirtioNetFeatures.CTRL_VQ.in(f);
        // Without MQ the driver has one pair (and index 2 is its control queue); with it, any of the device's pairs.
        int pairs = VirtioNetFeatures.MQ.in(f) ? rxq.length : 1;
        queues.queue(VirtioNetModel.RX0).orElseThrow(() -> new DeviceFault("virtio-net needs queue 0 (rx0)"));
        queues.queue(VirtioNetModel.TX0).orElseThrow(() -> new DeviceFault("virtio-net needs queue 1 (tx0)"));
        // The control queue only with CTRL_VQ: a driver without it may leave the index unset (or set it for nothing).
        QueueBinding ctrlb = VirtioNetFeatures.CTRL_VQ.in(f) ? queues.queue(ctrlIndex).orElse(null) : null;
        // Every ring checks out, or none runs.
        QueueBinding[] rxb = new QueueBinding[pairs], txb = new QueueBinding[pairs];
        SplitVirtqueue[] r = new SplitVirtqueue[pairs], t = new SplitVirtqueue[pairs];
        for (int n = 0; n < pairs; n++) {
            rxb[n] = queues.queue(VirtioNetModel.rxQueue(n)).orElse(null);
            txb[n] = queues.queue(VirtioNetModel.txQueue(n)).orElse(null);
            if (rxb[n] != null) r[n] = ring(rxb[n]);
            if (txb[n] != null) t[n] = ring(txb[n]);
        }
        SplitVirtqueue c = ctrlb == null ? null : ring(ctrlb);
        DeliveryLog log = deliveryLog(rxb, r);
        run = queues.run();
        try {
            // The switch port (joined at creation) outlives resets: its counters are what an operator watches
            // across driver resets and reconnects; between runs the closed rx gate drops deliveries as PORT_DOWN.
            if (port == null) throw new DeviceFault(name + " was removed: it has no switch port");
            for (int n = 0; n < pairs; n++) if (t[n] != null) startTx(txb[n], t[n]);
        } catch (RuntimeException e) {
            reset();
            throw e;
        }
        // A driver that starts over (no queue carries on from a saved position) gets the device's defaults back.
        boolean fresh = queues.queues().stream().allMatch(b -> startsOver(b.resume()));
        boolean announce;
        try {
            // A driver that carries on after a bus restart gets back what it had set (its control record); one that
            // starts over has the defaults written into its record.
            ControlRecord record = controlRecordAddress == 0 ? null : controlRecord(queues.memory(), fresh, f);
            announce = control.started(f, fresh);
            control.record(record);
        } catch (RuntimeException e) {
            reset();
            throw new DeviceFault(name + ": " + e.getMessage(), e);
        }
        if (c != null) startCtrl(ctrlb, c);
        deliveryLog = log;
        for (int n = 0; n < pairs; n++) if (r[n] != null) startRx(rxb[n], r[n]);
        retarget();
        rxGate.open();
        if (announce) context.configChanged();   // restored: the driver is asked to announce itself (VIRTIO_NET_S_ANNOUNCE)
    }

    /**
     * Whether a queue starts over rather than carrying on: no position given, or position 0 with nothing in flight.
     * A vhost-user front-end always hands a base (SET_VRING_BASE), 0 for a new driver: taking that for a run that
     * carries on kept a new QEMU guest from the defaults, among them its negotiated guest offloads (the switch then
     * cut every super-frame for a guest that had negotiated GUEST_TSO). Nothing has been through such a queue, so
     * there is nothing to carry on.
     */
    static boolean startsOver(QueueState resume) {
        return resume == null || resume.nextAvail() == 0 && resume.nextUsed() == 0 && resume.inFlight().isEmpty();
    }

    /** The model's verbs: {@link VirtioNetModel#CALL_DELIVERY_LOG}, {@link VirtioNetModel#CALL_CONTROL_RECORD}. */
    @Override
    public byte[] call(int func, byte[] payload) throws DeviceFault {
        String what = switch (func) {
            case VirtioNetModel.CALL_DELIVERY_LOG -> "delivery log";
            case VirtioNetModel.CALL_CONTROL_RECORD -> "control record";
            default -> throw new DeviceFault("virtio-net has no device call " + func);
        };
        if (payload.length != 8) throw new DeviceFault(what + ": payload is a u64 guest address, got " + payload.length + " bytes");
        long address = java.nio.ByteBuffer.wrap(payload).order(java.nio.ByteOrder.LITTLE_ENDIAN).getLong();
        if ((address & 7) != 0) throw new DeviceFault(what + " at 0x" + Long.toHexString(address) + " must be 8-byte aligned");
        if (anyRunning()) throw new DeviceFault("the " + what + " is set before DRIVER_OK");
        if (func == VirtioNetModel.CALL_DELIVERY_LOG) deliveryLogAddress = address;
        else controlRecordAddress = address;
        return new byte[0];
    }

    /**
     * VHOST_USER_SEND_RARP: broadcasts {@link dev.jvbus.net.RarpAnnouncement the RARP QEMU would} for
     * {@code address} from this device's port, so the switch moves the MAC to this port (a migrated guest's
     * target takes it over from the source's port, see {@code L2Switch.learn}) and every peer sees the
     * frame. The address must be unicast and, while the switch holds the port to its MAC (the spoof check),
     * that MAC: anything else would be dropped at ingress, and the front-end is told so instead.
     *
     * <p>The frame goes through a {@link SwitchPort.Sender} of its own, beside the tx workers' (each sending
     * thread has one), so no tx worker is parked for it.
     */
    @Override
    public void announce(byte[] address) throws DeviceFault {
        if (address.length != 6) throw new DeviceFault(name + ": announce: a MAC is 6 bytes, got " + address.length);
        long mac = MacAddress.fromBytes(address);
        if (mac == 0 || MacAddress.isGroup(mac))
            throw new DeviceFault(name + ": announce: " + MacAddress.toString(mac) + " is not a unicast address");
        SwitchPort p = port;
        if (p == null) throw new DeviceFault(name + " was removed: it has no switch port to announce from");
        java.util.OptionalLong held = p.assignedSource();
        if (held.isPresent() && held.getAsLong() != mac)
            throw new DeviceFault(name + ": announce: asked for " + MacAddress.toString(mac) + ", but the switch holds this port to "
                    + MacAddress.toString(held.getAsLong()) + " (" + dev.jvbus.net.MacSpoofCheck.PARAM + "); the frame would be dropped");
        synchronized (announceFrame) {   // one announcement at a time: the frame and its sender are the control plane's
            SwitchPort.Sender out = announceSender;
            if (out == null || out.port() != p) announceSender = out = p.sender();   // once per port: senders live as long as it
            dev.jvbus.net.RarpAnnouncement.write(announceFrame, 0, mac);
            out.send(announceFrame, 0, dev.jvbus.net.RarpAnnouncement.LENGTH, FrameMeta.BARE);
            announcementsSent++;
        }
    }

    /** Announcements sent for the front-end ({@link #announce}). */
    public long announcementsSent() {
        return announcementsSent;
    }

    /**
     * The device's delivery log, from the address the driver gave, for all its rx rings ({@code b[n]}, {@code q[n]}
     * per pair; null where the driver set none up): read back when the rings resume (a bus restart: each ring's used
     * index says whether the last frame logged on it was published), cleared when they start afresh.
     */
    private DeliveryLog deliveryLog(QueueBinding[] b, SplitVirtqueue[] q) throws DeviceFault {
        if (deliveryLogAddress == 0) return null;
        DeliveryLog log;
        try {
            log = DeliveryLog.at(b[0].memory(), deliveryLogAddress);
        } catch (dev.jvbus.core.memory.GuestMemoryException e) {
            throw new DeviceFault(name + ": delivery log: " + e.getMessage(), e);
        }
        int[] used = new int[rxq.length];
        java.util.Arrays.fill(used, DeliveryLog.NOT_RUNNING);
        boolean resumed = false;
        for (int n = 0; n < b.length; n++) {
            if (b[n] == null || b[n].resume() == null) continue;
            resumed = true;
            used[n] = q[n].nextUsed();
        }
        if (resumed) log.resume(used);
        else log.clear();
        return log;
    }

    /**
     * The driver's control record; for a run that carries on, what it holds is taken back first.
     *
     * @throws IllegalArgumentException naming the record when it is unusable or does not fit (the resume is refused)
     */
    private ControlRecord controlRecord(dev.jvbus.core.memory.GuestMemory memory, boolean fresh, long features) {
        try {
            ControlRecord record = ControlRecord.at(memory, controlRecordAddress);
            if (!fresh) record.read().ifPresent(saved -> control.resume(saved, features));
            return record;
        } catch (dev.jvbus.core.memory.GuestMemoryException | IllegalArgumentException | NetworkException e) {
            throw new IllegalArgumentException("control record at 0x" + Long.toHexString(controlRecordAddress) + ": " + e.getMessage(), e);
        }
    }

    private SplitVirtqueue ring(QueueBinding b) throws DeviceFault {
        try {
            SplitVirtqueue q = b.resume() != null
                    ? SplitVirtqueue.restore(b.resume(), b.memory(), indirect, inOrder, b.call(), b.counters())
                    : SplitVirtqueue.create(b.index(), b.config().size(), b.config().descAddr(), b.config().availAddr(),
                            b.config().usedAddr(), b.memory(), eventIdx, indirect, inOrder, b.call(), b.counters());
            if (b.inflight() != null) q.trackInflight(b.inflight());   // vhost-user: what it holds survives a bus restart
            return q;
        } catch (QueueFault e) {
            throw new DeviceFault(e.getMessage(), e);
        }
    }

    /**
     * Hands an rx ring to deliveries (the gate is closed: its fields are published when it opens); the caller
     * then re-picks the rx targets and opens the gate.
     */
    private void startRx(QueueBinding b, SplitVirtqueue q) {
        RxQueue x = rxq[b.index() / 2];
        x.active = b.active();
        x.memory = b.memory();
        q.disableKicks();            // buffers are noticed when a frame arrives; no kicks needed
        x.first = q.newChain();
        x.more = q.newChain();
        rxBroken = false;
        x.pending = 0;
        x.headers.drop();
        x.copies.drop();
        x.ring = q;
    }

    /**
     * Gives a tx queue its worker, reporting through the current run: a member of one of the container's poll
     * groups (the default), or a thread of its own ({@code poll=own}); either idles as {@code busy-poll} says.
     */
    private void startTx(QueueBinding b, SplitVirtqueue q) {
        int pair = b.index() / 2;
        TxQueue x = txq[pair];
        if (x == null) txq[pair] = x = new TxQueue(pair, port.sender());   // once per pair: its scratch and counters stay
        x.active = b.active();
        // Resumed after a bus restart: what the driver has made available may have been sent before; the
        // receivers' delivery logs tell (a ring started afresh, or restored after a move, has nothing sent twice).
        x.replays = b.resume() != null ? q.available() : 0;
        x.ring = q;
        x.chain = q.newChain();
        DataPathRun thisRun = run;
        String worker = name + (pair == 0 ? "-tx" : "-tx" + pair);
        java.util.function.Consumer<QueueFault> onFault = fault -> thisRun.needsReset(fault.getMessage());
        PollGroups.Polling polling = params.polling();
        x.worker = (polling.by() == PollGroups.Poll.OWN
                ? new QueueWorker(worker, b.index(), x.service(q, thisRun), List.of(b.kick()), List.of(b.counters()), polling.idle(), onFault)
                : new QueueWorker(worker, b.index(), x.service(q, thisRun), List.of(b.kick()), List.of(b.counters()),
                        context.resource(PollGroups.RESOURCE).pick(polling.idle()), onFault)).holding(b.memory()).start();
    }

    /** Whether any ring of this device runs (a start over a running device resets it first). */
    private boolean anyRunning() {
        for (RxQueue x : rxq) if (x.ring != null) return true;
        for (TxQueue x : txq) if (x != null && (x.ring != null || x.worker != null)) return true;
        return ctrl != null || ctrlWorker != null;
    }

    /**
     * Re-picks the rx queues frames go to: the running, enabled ones, and, when we serve the control queue (CTRL_VQ
     * negotiated with us), only those within the pairs the driver set (MQ_VQ_PAIRS_SET; 1 until it does). The
     * pairs are the device's, not the control ring's: a control queue stopped or reset keeps them (virtio 1.x
     * 5.1.6.5.5: the device uses pair 1 only after a device reset, until the driver sets the pairs). A front-end
     * that serves its control queue itself says which rings carry traffic by enabling them. Control path only
     * (start, a queue stopped, started, enabled or disabled, a pairs command); the hot path reads the result
     * once per frame.
     */
    private synchronized void retarget() {
        int within = servesCtrl ? control.queuePairs() : rxq.length;
        int n = 0;
        RxQueue[] t = new RxQueue[rxq.length];
        for (int p = 0; p < rxq.length && p < within; p++) if (rxq[p].ring != null && rxq[p].active) t[n++] = rxq[p];
        rxTargets = java.util.Arrays.copyOf(t, n);
    }

    /** The memory the rx rings lie in now (one per device run), or null: what a stuck delivery may be touching. */
    private GuestMemory rxMemory() {
        for (RxQueue x : rxq) if (x.ring != null && x.memory != null) return x.memory;
        return null;
    }

    /** Gives the control queue a worker of its own (commands are rare: it sleeps on its doorbell). */
    private void startCtrl(QueueBinding b, SplitVirtqueue q) {
        ControlQueue cq = new ControlQueue(q, b.index(), b.memory(), control);
        ctrl = cq;
        DataPathRun thisRun = run;
        ctrlWorker = new QueueWorker(name + "-ctrl", b.index(), cq, List.of(b.kick()), List.of(b.counters()),
                DoorbellWait.Mode.ADAPTIVE, fault -> thisRun.needsReset(fault.getMessage())).holding(b.memory()).start();
    }

    /** Stops the control queue's worker within its bound; false if it did not stop (stuck: left behind, counted). */
    private boolean stopCtrl() {
        QueueWorker w = ctrlWorker;
        ctrlWorker = null;
        if (w != null && !w.stop(QueueWorker.WAIT_BOUND)) {
            workersLeftBehind++;
            return false;
        }
        return true;
    }

    // ---- one queue at a time: rx and tx share nothing but the port, so each stops and starts alone ----

    @Override
    public boolean resetsQueues() {
        return true;
    }

    /** The pair of data queue {@code index}, or -1 for the control queue or an index this driver has no pair at. */
    private int pairOf(int index) {
        if (index == ctrlIndex) return -1;
        int pair = index / 2;
        return pair < rxq.length && (pair == 0 || VirtioNetFeatures.MQ.in(context.negotiatedFeatures())) ? pair : -1;
    }

    /**
     * rx: the gate closes (deliveries meanwhile drop as PORT_DOWN, counted), the ring is saved and leaves the
     * rx targets, and the gate opens again for the other rx queues; tx: its worker finishes its batch and ends,
     * then the ring is saved. The other queues run on, or stay quiesced if an operator's pause holds them (the
     * gate stays closed, their workers parked).
     */
    @Override
    public QueueState stopQueue(int index) throws DeviceFault {
        int pair = pairOf(index);
        if (pair >= 0 && index % 2 == 0 && rxq[pair].ring != null) {
            RxQueue x = rxq[pair];
            if (!rxGate.close())
                throw new DeviceFault(name + ": an rx delivery did not leave within " + RxGate.DEFAULT_BOUND.toMillis()
                        + " ms (stuck in its doorbell); the rx ring has no stable state");
            publishRxClosed(x);   // frames a sender's batch took in and had not flushed yet
            QueueState s = saveStopped(x.ring);
            x.ring = null;
            retarget();
            if (anyRxRunning() && !quiesced) rxGate.open();
            return s;
        }
        if (pair >= 0 && index % 2 == 1 && txq[pair] != null && txq[pair].ring != null) {
            TxQueue x = txq[pair];
            QueueWorker w = x.worker;
            x.worker = null;
            if (w != null && !w.stop(QueueWorker.WAIT_BOUND)) {
                workersLeftBehind++;
                throw new DeviceFault(name + ": the tx worker of pair " + pair + " did not stop within " + QueueWorker.WAIT_BOUND.toMillis()
                        + " ms (stuck in a delivery); the tx ring has no stable state");
            }
            QueueState s = saveStopped(x.ring);
            x.ring = null;
            return s;
        }
        if (index == ctrlIndex && ctrl != null) {
            if (!stopCtrl())
                throw new DeviceFault(name + ": the control worker did not stop within " + QueueWorker.WAIT_BOUND.toMillis()
                        + " ms; the control ring has no stable state");
            QueueState s = saveStopped(ctrl.ring());
            ctrl = null;
            retarget();
            return s;
        }
        throw new DeviceFault(name + ": queue " + index + " does not run");
    }

    private boolean anyRxRunning() {
        for (RxQueue x : rxq) if (x.ring != null) return true;
        return false;
    }

    private QueueState saveStopped(SplitVirtqueue q) throws DeviceFault {
        notificationsBefore += q.notificationsSent();
        try {
            return q.save();
        } catch (IllegalStateException e) {   // a worker that died of a fault mid-batch: no consistent position
            throw new DeviceFault(name + ": " + e.getMessage(), e);
        }
    }

    @Override
    public void startQueue(QueueBinding b) throws DeviceFault {
        int pair = pairOf(b.index());
        if (pair >= 0 && b.index() % 2 == 0 && rxq[pair].ring == null) {
            SplitVirtqueue q = ring(b);
            // The delivery log is the device's, made at start: a ring stopped and started within the run keeps logging into it.
            rxGate.close();   // the new ring's fields are published when the gate opens again
            DeliveryLog log = deliveryLog;
            if (log != null && b.resume() == null) log.ringStartedAfresh(pair);
            startRx(b, q);
            retarget();
            rxGate.open();
        }
        else if (pair >= 0 && b.index() % 2 == 1 && (txq[pair] == null || txq[pair].ring == null)) startTx(b, ring(b));
        else if (b.index() == ctrlIndex && ctrl == null && VirtioNetFeatures.CTRL_VQ.in(context.negotiatedFeatures())) {
            startCtrl(b, ring(b));
            retarget();
        }
        else throw new DeviceFault(name + ": queue " + b.index() + " runs already or does not exist");
    }

    @Override
    public void reset() {
        // A delivery stuck past the gate's bound (in its doorbell, the last thing it does to the ring) is
        // logged and left: returning late it writes counters, nothing else.
        boolean rxClosed = rxGate.close();
        run = DataPathRun.NONE;
        quiesced = false;   // nothing left to hold: the next start opens the gate
        // Joins within the bound, unless we are that worker (then it only stops). One stuck in a delivery
        // into a wedged device is left behind: its run is over, so it touches no ring when it returns.
        for (TxQueue x : txq) {
            if (x == null) continue;
            QueueWorker w = x.worker;
            x.worker = null;
            if (w != null && !w.stop(QueueWorker.WAIT_BOUND)) workersLeftBehind++;
        }
        stopCtrl();
        for (RxQueue x : rxq) {
            if (rxClosed) dropPending(x);
            if (x.ring != null) notificationsBefore += x.ring.notificationsSent();
            x.ring = null;
        }
        for (TxQueue x : txq) {
            if (x == null) continue;
            if (x.ring != null) notificationsBefore += x.ring.notificationsSent();
            x.ring = null;
        }
        if (ctrl != null) notificationsBefore += ctrl.ring().notificationsSent();
        ctrl = null;
        retarget();
        deliveryLogAddress = 0;   // the next driver's memory is not this one's
        deliveryLog = null;
        controlRecordAddress = 0;
        control.record(null);     // nothing more is written into this driver's memory
    }

    /**
     * At a reset, with the gate closed: the frames a sender's batch took into {@code x} and had not flushed go with the
     * driver's ring, never published; counted as {@link DropReason#PORT_DOWN} (the switch counted them handed over).
     * Under the copies' monitor: a sender whose run ends now may be staging them.
     */
    private void dropPending(RxQueue x) {
        synchronized (x.copies) {
            if (x.pending == 0) return;
            rxDrops[DropReason.PORT_DOWN.ordinal()] += x.pending;
            x.pending = 0;
            x.headers.drop();
            x.copies.drop();
        }
    }

    @Override
    public void close() {
        SwitchPort p = port;
        port = null;
        if (p != null) {
            p.leave();
        }
    }

    @Override
    public void queueActive(int index, boolean active) {
        int pair = pairOf(index);
        if (pair < 0) return;
        if (index % 2 == 0) {
            rxq[pair].active = active;
            retarget();
        } else if (txq[pair] != null) {
            txq[pair].active = active;
        }
    }

    @Override
    public void quiesce() throws DeviceFault {
        for (TxQueue x : txq)
            if (x != null && x.worker != null && !x.worker.quiesce())
                throw new DeviceFault(name + ": the tx worker of pair " + x.pair + " did not park within " + QueueWorker.WAIT_BOUND.toMillis()
                        + " ms (stuck in a delivery); the tx ring has no stable state to save");
        if (ctrlWorker != null && !ctrlWorker.quiesce())
            throw new DeviceFault(name + ": the control worker did not park within " + QueueWorker.WAIT_BOUND.toMillis()
                    + " ms; the control ring has no stable state to save");
        if (!rxGate.close())
            throw new DeviceFault(name + ": an rx delivery did not leave within " + RxGate.DEFAULT_BOUND.toMillis()
                    + " ms (stuck in its doorbell); the rx ring has no stable state to save");
        for (RxQueue x : rxq) if (x.pending != 0) publishRxClosed(x);   // frames a sender's batch took in and had not flushed yet
        rxPending = false;
        quiesced = true;
    }

    @Override
    public void resume() {
        quiesced = false;
        if (anyRxRunning()) rxGate.open();
        for (TxQueue x : txq) if (x != null && x.worker != null) x.worker.resume();
        if (ctrlWorker != null) ctrlWorker.resume();
    }

    @Override
    public List<QueueState> saveQueues() {
        List<QueueState> out = new ArrayList<>();
        for (int n = 0; n < rxq.length; n++) {
            if (rxq[n].ring != null) out.add(rxq[n].ring.save());
            if (txq[n] != null && txq[n].ring != null) out.add(txq[n].ring.save());
        }
        if (ctrl != null) out.add(ctrl.ring().save());
        return out;
    }

    @Override
    public VirtioNetState saveModel() {
        return control.save().withAddresses(deliveryLogAddress, controlRecordAddress);
    }

    /**
     * The driver's control-queue settings come back, and where its delivery log and control record are; the config
     * space (its MAC, its status) was restored before. The
     * config the driver read must not promise more pairs than this device has: MQ_VQ_PAIRS_SET is checked against it.
     */
    @Override
    public void restoreModel(ModelState state) throws DeviceFault {
        byte[] max = context.config().read(VirtioNetModel.CONFIG_MAX_PAIRS, 2);
        int maxPairs = (max[0] & 0xff) | (max[1] & 0xff) << 8;
        if (maxPairs > rxq.length)
            throw new DeviceFault(name + ": the saved config space says max_virtqueue_pairs " + maxPairs + ", this device has "
                    + rxq.length + " (queue-pairs)");
        VirtioNetState s = (VirtioNetState) state;
        try {
            control.restore(s, context.negotiatedFeatures());
        } catch (IllegalArgumentException | NetworkException e) {
            throw new DeviceFault(name + ": " + e.getMessage(), e);
        }
        // The driver's log and record stay where they are in its memory, and the device goes on writing them there: a
        // driver that follows a move sets nothing up again, and a bus restart after the move must find what was
        // delivered and set on this bus, not before the move. Checked against the memory when the data path starts.
        deliveryLogAddress = s.deliveryLogAddress();
        controlRecordAddress = s.controlRecordAddress();
    }

    // ================================================================ control queue state, for the frame path and operators

    /**
     * The guest offloads (VIRTIO_NET_F_GUEST_* bits) the driver has on now: all it negotiated until it
     * changes them with GUEST_OFFLOADS_SET. One volatile read: the rx path may consult it per frame.
     */
    public long activeGuestOffloads() {
        return control.guestOffloads();
    }

    /** The MAC the driver uses now (MAC_ADDR_SET changes it; a new driver session starts from the operator's). */
    public long currentMac() {
        return control.mac();
    }

    /** Whether the device asked its driver to announce itself and the driver has not acknowledged it yet. */
    public boolean announcePending() {
        return control.announcePending();
    }

    /** Control commands answered OK and ERR (racy reads of the control worker's counters). */
    public ControlStats controlStats() {
        return new ControlStats(control.commandsOk, control.commandsRefused);
    }

    /** Control commands answered, for operators: OK and ERR (refused: malformed, not negotiated, not allowed). */
    public record ControlStats(long ok, long refused) { }

    /** Reports a driver error found by a delivery: never blocks (we hold the port's lock), ignored once the run is over. */
    private void report(String reason) {
        run.needsReset(reason);
    }

    // ================================================================ tx

    /**
     * One tx queue: its ring, its worker and everything that worker touches per frame (chain, gather buffer,
     * header scratch, offload flyweight, its {@link SwitchPort.Sender} and counters), so tx queues of one
     * device run side by side without sharing a field. Made once per pair; the counters outlive resets.
     */
    private final class TxQueue {
        final int pair;
        final SwitchPort.Sender sender;
        SplitVirtqueue ring;                 // control path sets and clears it; the worker reads its own copy
        QueueWorker worker;
        DescriptorChain chain;
        int replays;                         // frames left that were available when the ring resumed (maybe sent before)
        // vhost-user "started but disabled" ring: processed without side effects (spec: a net device discards
        // tx). A plain volatile flag: one read per batch.
        volatile boolean active = true;
        private final MemorySegment frame;   // gather buffer (native: a TAP writes it as is)
        private final MemorySegment header = MemorySegment.ofArray(new byte[SIZE]);
        private final FrameOffload offload = new FrameOffload();
        long frames, bytes, dropTooBig, dropGso, dropBadCsum, dropInactive;   // this worker only
        boolean lastWasSuperFrame;           // this worker only: the frame transmit() just sent was a TSO/USO super-frame

        TxQueue(int pair, SwitchPort.Sender sender) {
            this.pair = pair;
            this.sender = sender;
            this.frame = Arena.ofAuto().allocate(Math.max(params.mtu() + L2_OVERHEAD, FrameOffload.MAX_GSO_FRAME), 8);
        }

        QueueService service(SplitVirtqueue q, DataPathRun run) {
            return new TxService(this, q, chain, run, params.evict());
        }

        void transmit(DescriptorChain c, FrameMeta meta) throws QueueFault {
            lastWasSuperFrame = false;
            if (c.writableCount() != 0)
                throw badTx("tx buffer " + c.head() + " has " + c.writableCount() + " device-writable descriptors");
            long total = c.readableBytes();
            if (total < hdrLen)
                throw badTx("tx buffer " + c.head() + " of " + total + " bytes is shorter than the " + hdrLen + "-byte virtio_net_hdr");
            long frameLen = total - hdrLen;
            boolean gsoGranted = (txTakes & ~FrameOffload.TAKES_CSUM) != 0;
            if (frameLen > (gsoGranted ? FrameOffload.MAX_GSO_FRAME : maxFrame)) {
                dropTooBig++;
                return;
            }
            if (txTakes != 0) readHeader(c);
            else if (!offload.isPlain()) offload.clear();   // the header says nothing (txOffloads): a bare frame
            int len = (int) frameLen;
            if (!offload.isGso() && len > maxFrame) {      // only a super-frame may be larger than the MTU
                dropTooBig++;
                return;
            }
            MemorySegment seg;
            long off;
            if (c.readableCount() == 1 || c.length(0) == hdrLen && c.readableCount() == 2) {
                int i = c.readableCount() - 1;           // header and frame together, or the frame alone after the header
                seg = c.hostSegment(i);                  // at its host address, as in readHeader
                off = c.hostOffset(i) + (i == 0 ? hdrLen : 0);
            } else {
                gather(c, hdrLen, frame, 0, len);
                seg = frame;
                off = 0;
            }
            if (!offload.isPlain()) {
                // The one check of the driver's header against its frame; then only what the driver was granted.
                int v = offload.check(seg, off, len);
                if (v == FrameOffload.BAD_CSUM) {
                    dropBadCsum++;
                    return;
                }
                if (v != FrameOffload.OK || (offload.needs() & ~txTakes) != 0) {
                    dropGso++;
                    return;
                }
            }
            // A frame in the driver's tx buffer stays there until this batch's flush (the buffer goes back to the driver
            // only after it): receivers may copy it at the end of the run. One gathered into our own buffer does not.
            meta.stays(seg != frame);
            sender.send(seg, off, len, meta);   // meta carries this queue's offload flyweight, the origin and the batch
            lastWasSuperFrame = offload.isGso();
            frames++;
            bytes += len;
        }

        /** The driver's header, read once: DATA_VALID and other flags mean nothing on tx (the spec gives them to rx). */
        private void readHeader(DescriptorChain c) {
            MemorySegment h;
            long ho;
            if (c.length(0) >= hdrLen) {
                // Memory that FFM never closes is read at its host address from here on, by us and by every receiver
                // (HostMemory says why its checks prove nothing there): the ring checked this buffer against its region.
                h = c.hostSegment(0);
                ho = c.hostOffset(0);
            } else {
                gather(c, 0, header, 0, hdrLen);
                h = header;
                ho = 0;
            }
            offload.readVnet(h, ho, F_NEEDS_CSUM);
        }

        /** Bytes at the start of each tx buffer this queue does not read: the header, when it says nothing. */
        int unreadPrefix() {
            return txTakes == 0 ? hdrLen : 0;
        }

        /** A tx buffer that breaks virtio-net's rules (not the ring's, which the ring counts): counted on its ring, then thrown. */
        private QueueFault badTx(String why) {
            SplitVirtqueue t = ring;
            if (t != null) t.counters().fault(QueueFault.Reason.BAD_DESCRIPTOR);
            return new QueueFault(VirtioNetModel.txQueue(pair), QueueFault.Reason.BAD_DESCRIPTOR, why);
        }
    }

    /** A tx worker's work: batches of its tx queue's buffers to the switch. */
    private static final class TxService implements QueueService {
        private final TxQueue x;
        private final SplitVirtqueue q;
        private final DescriptorChain chain;
        private final DataPathRun run;
        /**
         * The receivers this worker's batch delivered to: each publishes once at the batch's end, not per frame.
         * This worker's own (a worker a reset left behind keeps its batch; the next worker has a new one).
         */
        private final SendBatch batch = new SendBatch();
        /** What each frame of this worker carries into the switch: the queue's offload flyweight, its origin, the batch. */
        private final FrameMeta meta;
        /** Whether this worker reads ahead: measured, both ways, now and then. */
        private final ReadAheadChoice readAhead = new ReadAheadChoice();
        /** What {@link SplitVirtqueue#touchAhead} read, kept so that the JIT keeps the reads. */
        @SuppressWarnings("unused") private long touched;
        /**
         * The lines this batch read that the driver writes next, evicted once the batch is given back ({@link
         * EvictChoice} says why and which); null where eviction is unavailable or the table is not at a host address
         * that stays mapped. Filled and emptied within one {@link #poll}: a line never outlives the hold on the memory
         * it lies in.
         */
        private final CacheLines.Batch evictions;
        private final EvictChoice evictChoice;
        /** The heads the last batch gave back, in order: evicted after it, not in its loop ({@link #poll} says why). */
        private final int[] heads = new int[TX_BATCH];
        /** The host address of each of those frames' first byte we read, -1 where its memory is not direct. */
        private final long[] frameStarts = new long[TX_BATCH];
        private long taken;   // buffers this worker took: the measure of the queue's throughput for evictChoice

        /** {@code evict}: the operator's fixed level, or null to measure ({@link VirtioNetParams#evict}). */
        TxService(TxQueue x, SplitVirtqueue q, DescriptorChain chain, DataPathRun run, EvictedLines evict) {
            this.x = x;
            this.q = q;
            this.chain = chain;
            this.run = run;
            this.meta = new FrameMeta(batch).offload(x.offload);
            this.evictions = CacheLines.available() && q.descriptorHostAddress(0) >= 0 ? new CacheLines.Batch() : null;
            this.evictChoice = new EvictChoice(evict);
        }

        @Override
        public boolean poll() throws QueueFault {
            // Every turn of a mode is here and not in batch(), which the JIT compiles on its own (too big to inline):
            // a branch that the batch loop's profile has not seen taken is compiled as a trap, and one that tests a
            // value fixed for the batch (a mode, whether the queue is enabled) is moved before the loop, so the first
            // batch in the other state deoptimized the whole loop. That loop is one compiled method for every queue
            // its poll group serves, and its recompilation took 0.6 s on the worker's busy core (bench-vhost,
            // session 24); a probe's or a hold's end, a session's start or end set it off (sessions 28-29). Here a
            // turn deoptimizes at most this small method.
            if (!x.active) return dropInactive();
            EvictedLines evict = EvictedLines.NONE;
            if (evictions != null) {
                if (evictChoice.timing()) evictChoice.at(System.nanoTime(), taken);
                else evictChoice.heldBatch();
                evict = evictChoice.level();
            }
            boolean timing = readAhead.timing();
            long t0 = timing ? System.nanoTime() : 0;
            int n;
            try {
                n = batch(readAhead.on());
            } finally {
                batch.flush();     // also when the batch ends early: what was delivered becomes visible
            }
            // After the publication, whose full fence would otherwise wait for the flushes: they complete while the
            // next batch runs. The driver rewrites these descriptors only when its ring comes round to them again,
            // a ring's worth of buffers later, and these buffers when it fills them again, so they are gone from our
            // caches well before then. A batch cut short by a fault or a reset (no publication of ours) is not evicted.
            if (evict != EvictedLines.NONE) evictLines(n, evict);
            if (n == TX_BATCH) {   // a full batch: this worker, not the front-end, set its pace
                if (timing) readAhead.fullBatch(System.nanoTime() - t0, n);
                else readAhead.heldBatch();
            }
            return n > 0;
        }

        /**
         * One batch of an enabled queue, reading ahead if {@code ahead}: returns the buffers it took and gave back
         * ({@link #heads}), 0 if none or if a reset left this worker behind in it.
         */
        private int batch(boolean ahead) throws QueueFault {
            int n = 0;
            int before = q.nextAvail();
            long publishedAt = x.bytes;   // bytes sent when this batch last published
            int skip = x.unreadPrefix();
            if (ahead) touched += q.touchAhead(TOUCH_AHEAD, skip);
            while (n < TX_BATCH && q.pop(chain)) {
                // The next ones as soon as those read ahead are taken: also those made available after the last read.
                if (ahead && q.readAheadUsedUp()) touched += q.touchAhead(TOUCH_AHEAD, skip);
                int after = q.nextAvail();
                int origin = after == before ? NetPort.NO_ORIGIN : NetPort.origin(before, x.replays > 0, x.pair);
                if (x.replays > 0) x.replays--;
                before = after;
                x.transmit(chain, meta.origin(origin));
                // The send may have been long (stuck in a delivery into a wedged device) and this worker
                // left behind by a reset: then the ring belongs to the next run; publish nothing.
                if (!run.isCurrent()) return 0;
                int head = chain.head();
                heads[n] = head;
                frameStarts[n] = frameStart(skip);
                q.pushUsed(head, 0);
                n++;
                if (x.lastWasSuperFrame || x.bytes - publishedAt >= TX_COMPLETE_BYTES) {
                    // Completed now, not at the batch's end (TX_COMPLETE_BYTES says why); receivers first, as below.
                    batch.flush();
                    q.publishUsed();
                    publishedAt = x.bytes;
                }
            }
            taken += n;
            if (n > 0) {
                // Receivers first: a frame whose tx buffer the driver gets back must already be published at
                // its receiver, or a bus killed between the two loses it (the sender has it back as sent, the
                // receiver's ring resumes without it). Killed after the flush and before this publish, the
                // sender's ring resumes with the batch still available: sent again (the delivery log skips it).
                batch.flush();
                q.publishUsed();
            }
            return n;
        }

        /**
         * A batch while the driver has the queue disabled (vhost-user's SET_VRING_ENABLE 0, at a session's start and
         * end): its buffers are given back unsent and counted.
         */
        private boolean dropInactive() throws QueueFault {
            int n = 0;
            while (n < TX_BATCH && q.pop(chain)) {
                if (x.replays > 0) x.replays--;
                x.dropInactive++;
                if (!run.isCurrent()) return false;   // as in batch(): the ring belongs to the next run
                q.pushUsed(chain.head(), 0);
                n++;
            }
            taken += n;
            if (n > 0) q.publishUsed();
            return n > 0;
        }

        /**
         * Where the frame just popped starts, as far as this worker read it ({@code skip}: the header bytes it left
         * unread): its host address in the first descriptor that holds frame bytes, or -1 where that memory is not
         * direct (no host address that stays mapped) or the frame starts past the first two descriptors.
         */
        private long frameStart(int skip) {
            for (int i = 0; i < 2 && i < chain.readableCount(); i++) {
                long len = chain.length(i);
                if (len > skip) return chain.hostSegment(i) == HostMemory.ALL ? chain.hostOffset(i) + skip : -1;
                skip -= (int) len;
            }
            return -1;
        }

        /**
         * Evicts the descriptor lines of the last batch's {@code n} buffers, if any (the driver rewrites them when it
         * makes the entries available again), and the line of the start of those frames {@code level} evicts. A flush
         * faults only on a page its front-end truncated under our mapping: that is its fault, on this queue, as an
         * access of ours to that memory would be.
         */
        private void evictLines(int n, EvictedLines level) throws QueueFault {
            for (int i = 0; i < n; i++) evictions.add(q.descriptorHostAddress(heads[i]));
            evict(QueueFault.Reason.BAD_RING_ADDRESS, "descriptor table");
            if (!level.evictsFrames()) return;
            for (int i = 0; i < n; i++) if (frameStarts[i] >= 0 && level.evictsFrame(i)) evictions.add(frameStarts[i]);
            evict(QueueFault.Reason.BUFFER_OUT_OF_RANGE, "buffer");   // apart: a fault then names what it was in
        }

        private void evict(QueueFault.Reason ifFaulted, String what) throws QueueFault {
            int lines = evictions.size();
            if (evictions.evict()) {
                q.counters().evicted(lines);
                return;
            }
            q.counters().fault(ifFaulted);
            throw new QueueFault(VirtioNetModel.txQueue(x.pair), ifFaulted,
                    "its " + what + " faulted when evicted from the caches: its memory file was truncated under our mapping");
        }

        @Override public boolean hasWork() { return q.hasAvailable(); }

        @Override public boolean armDoorbell() { return q.enableKicks(); }

        @Override public void disarmDoorbell() { q.disableKicks(); }
    }

    /** Copies {@code len} readable bytes of the chain, starting {@code from} bytes in, to {@code dst}. */
    private static void gather(DescriptorChain c, long from, MemorySegment dst, long dstOff, long len) {
        for (int i = 0, n = c.readableCount(); i < n && len > 0; i++) {
            long l = c.length(i);
            if (from >= l) {
                from -= l;
                continue;
            }
            long k = Math.min(l - from, len);
            MemorySegment.copy(c.segment(i), c.offset(i) + from, dst, dstOff, k);
            dstOff += k;
            len -= k;
            from = 0;
        }
    }

    /**
     * The frame into rx buffer {@code c} after the header; returns how many bytes fitted. A small frame that fits the
     * first descriptor and may wait ({@code mayWait}: it stays in the sender's buffer and the publication is
     * batched) is held in {@code x}'s {@link RxCopies} and copied at the end of the sender's run; any other at once.
     */
    private long copyIn(RxQueue x, GuestMemory mem, DescriptorChain c, MemorySegment frame, long offset, int length, boolean mayWait) {
        if (mayWait && c.count() == 1 && c.length(0) - hdrLen >= length
                && x.copies.hold(frame, offset, c.hostSegment(0), c.hostOffset(0) + hdrLen, c.address(0) + hdrLen, length)) {
            rxDeferred = true;
            return length;
        }
        return scatter(mem, c, hdrLen, frame, offset, length);
    }

    /** Copies {@code len} bytes into the chain's writable part at {@code at} bytes in; returns how many fitted. */
    private static long scatter(GuestMemory rxMemory, DescriptorChain c, long at, MemorySegment src, long srcOff, long len) {
        long done = 0;
        for (int i = c.readableCount(), n = c.count(); i < n && done < len; i++) {
            long l = c.length(i);
            if (at >= l) {
                at -= l;
                continue;
            }
            long k = Math.min(l - at, len - done);
            HostMemory.copy(src, srcOff + done, c.hostSegment(i), c.hostOffset(i) + at, k);   // k <= l - at: inside the descriptor
            rxMemory.markDirty(c.address(i) + at, k);   // migration: rx data is device-written guest memory
            done += k;
            at = 0;
        }
        return done;
    }

    // ================================================================ rx

    @Override
    public int offloadsTaken() {
        return control.rxTakes();   // what it negotiated, less what it turned off on the control queue
    }

    @Override
    public DropReason deliver(MemorySegment frame, long offset, int length) {
        return deliver(frame, offset, length, FrameOffload.NONE, NetPort.NO_ORIGIN);
    }

    @Override
    public DropReason deliver(MemorySegment frame, long offset, int length, FrameOffload offload) {
        return deliver(frame, offset, length, offload, NetPort.NO_ORIGIN);
    }

    @Override
    public DropReason deliver(MemorySegment frame, long offset, int length, FrameOffload offload, int origin) {
        return deliver(frame, offset, length, offload, origin, false);
    }

    /** A frame in the sender's buffer until the end of its run here: its copy may wait until then ({@link RxCopies}). */
    @Override
    public DropReason deliverStaying(MemorySegment frame, long offset, int length, FrameOffload offload, int origin) {
        return deliver(frame, offset, length, offload, origin, true);
    }

    private DropReason deliver(MemorySegment frame, long offset, int length, FrameOffload offload, int origin, boolean stays) {
        try {
            if (!rxGate.enter()) return drop(DropReason.PORT_DOWN);
            RxQueue[] targets = rxTargets;
            int n = targets.length;
            if (n == 0) return drop(DropReason.PORT_DOWN);    // no rx ring runs enabled (vhost-user: all disabled)
            // The switch read offloadsTaken() before we entered: a reset and a new driver may have come between.
            if ((offload.needs() & ~control.rxTakes()) != 0) return drop(DropReason.PORT_DOWN);
            RxQueue x = n == 1 ? targets[0] : targets[FlowHash.pick(FlowHash.of(frame, offset, length), n)];
            return receive(x, frame, offset, length, offload, origin, stays);
        } finally {
            rxGate.leave();
        }
    }

    private DropReason drop(DropReason r) {
        rxDrops[r.ordinal()]++;
        return r;
    }

    /**
     * Publishes the frames the deliveries since the last flush pushed: one used-index store, one notify decision per rx
     * ring. Returns the frames lost because our ring faulted under them ({@link #publishRx(RxQueue)}).
     */
    @Override
    public int flush() {
        if (!rxPending) return 0;
        int lost = 0;
        try {
            if (rxGate.enter()) {
                rxPending = false;
                for (RxQueue x : rxq) if (x.pending != 0) lost += publishRx(x);
                rxDeferred = false;
            } else {
                stageDeferred();   // the control plane has the rx rings and publishes; the frames' bytes go with it
            }
        } finally {
            rxGate.leave();
        }
        return lost;
    }

    /**
     * The sender's run here ends: the copies put off for its frames are made now, while the frames stay in its
     * buffers ({@link RxCopies}); they are published at its batch's flush, as before.
     */
    @Override
    public int endRun() {
        if (!rxDeferred) return 0;
        int lost = 0;
        try {
            if (rxGate.enter()) {
                rxDeferred = false;
                for (RxQueue x : rxq) if (!x.copies.isEmpty()) lost += copyDeferred(x);
            } else {
                stageDeferred();
            }
        } finally {
            rxGate.leave();
        }
        return lost;
    }

    /**
     * Inside the gate, on the sender's thread: the copies {@code x} put off, into its rx buffers. Returns the frames
     * lost: if our memory faulted, every frame {@code x} took and had not published (never published now: the rx ring
     * is broken), counted here once, as a delivery into it that faulted would have been.
     */
    private int copyDeferred(RxQueue x) {
        if (x.ring == null || rxBroken) {
            x.copies.drop();   // their frames are not published: counted as lost at the flush (publishRx)
            return 0;
        }
        try {
            x.copies.copyAll(x.memory);
            MappedMemoryFault.surface();   // the sender's memory or ours may have shrunk: as in receive
            return 0;
        } catch (InternalError e) {
            if (!MappedMemoryFault.in(e, x.memory)) throw e;   // the sender's: its own worker's fault
            int taken = x.pending;
            x.pending = 0;
            x.headers.drop();
            breakRx(x, "rx: " + MappedMemoryFault.describe(e));
            return lostToFault(taken);
        }
    }

    /**
     * The gate is closed (the control plane has the rx rings, and publishes what is pending): the sender's frames are
     * copied into each queue's staging memory, so that its buffers may go back to its driver. Under each queue's
     * copies' monitor, which the control plane's publication takes too.
     */
    private void stageDeferred() {
        rxDeferred = false;
        for (RxQueue x : rxq) {
            synchronized (x.copies) {
                if (!x.copies.isEmpty()) x.copies.stage();
            }
        }
        MappedMemoryFault.surface();   // a fault reading the sender's memory is the sender's: surfaced on its thread
    }

    /**
     * Under the port's lock inside the gate (a sender's flush): the frames' put-off copies, headers, used index. Returns
     * the frames lost: every one {@code x} took since its last publication, if its ring faulted now or before (they are
     * never published: the ring is broken), counted here once, as {@link #copyDeferred(RxQueue)} counts its own.
     */
    private int publishRx(RxQueue x) {
        SplitVirtqueue q = x.ring;
        int taken = x.pending;
        x.pending = 0;
        if (q == null || rxBroken) {
            x.headers.drop();   // their frames are not published
            x.copies.drop();
            return q == null ? 0 : lostToFault(taken);   // no ring: a reset took it, and counted the frames (dropPending)
        }
        try {
            x.copies.copyAll(x.memory);     // before their headers and the used index
            x.headers.writeAll(x.memory);   // before the used index that makes them the driver's
            q.publishUsed();
            if (x.memory.canShrink() || rxDeferred) MappedMemoryFault.surface();   // as in receive
            return 0;
        } catch (InternalError e) {
            if (!MappedMemoryFault.in(e, x.memory)) throw e;
            x.headers.drop();
            x.copies.drop();
            breakRx(x, "rx: " + MappedMemoryFault.describe(e));
            return lostToFault(taken);
        }
    }

    /** Frames taken into a broken rx ring and never published, counted as its faults' drops. */
    private int lostToFault(int frames) {
        rxDrops[DropReason.RING_FAULT.ordinal()] += frames;
        return frames;
    }

    /**
     * By the control plane with the gate closed (the ring is its own), for frames a sender's batch took in and had
     * not flushed: as {@link #publishRx(RxQueue)}, its put-off copies made under their monitor (a sender whose run
     * ends now may be staging them). A copy still reads a sender's buffer, which stays until that sender's flush,
     * and that flush waits on the monitor; a fault there is the sender's memory's, not ours nor the control plane's
     * to answer for: logged, and the frame goes with what was copied.
     */
    private void publishRxClosed(RxQueue x) {
        synchronized (x.copies) {
            if (x.ring != null && !rxBroken && !x.copies.isEmpty()) {
                try {
                    x.copies.copyAll(x.memory);
                    MappedMemoryFault.surface();
                } catch (InternalError e) {
                    if (!MappedMemoryFault.is(e) || MappedMemoryFault.in(e, x.memory)) throw e;
                    LOG.log(System.Logger.Level.WARNING, "{0}: a sender''s frame could not be read while rx was being stopped ({1});"
                            + " delivered as far as it was read", name, e.getMessage());
                }
            }
            publishRx(x);
        }
    }

    /**
     * One rx queue (pair {@link #pair}): its ring while it runs, and what deliveries into it keep. Touched only
     * under the port's delivery lock (one delivery at a time for the whole device), except {@link #active}.
     */
    private static final class RxQueue {
        final int pair;
        SplitVirtqueue ring;
        GuestMemory memory = GuestMemory.empty();   // where rx writes land (dirty logging during migration)
        DescriptorChain first, more;
        // vhost-user "started but disabled": supplies no rx. Set on the control path, which re-picks the targets.
        volatile boolean active = true;
        long frames, bytes;                          // deliveries
        int pending;                                 // deliveries: pushed, not yet published (a sender's batch flushes them)
        final RxHeaders headers = new RxHeaders();   // the pending deliveries' headers, written at publication
        final RxCopies copies = new RxCopies();      // their frames' bytes, when put off (the sender's run, at most)

        RxQueue(int pair) {
            this.pair = pair;
        }
    }

    /**
     * Delivers into rx queue {@code x}, on the sender's thread. A fault in memory the front-end truncated under us is
     * this device's, not the sender's: it is made to surface inside this try (the JVM reports it at the thread's next
     * safepoint poll, which in the sender's compiled batch loop lies past any catch here, {@link MappedMemoryFault}),
     * and blamed on this device only if its memory file did shrink. Without that evidence it is not ours: rethrown,
     * it ends up as the sending worker's own fault.
     */
    private DropReason receive(RxQueue x, MemorySegment frame, long offset, int length, FrameOffload offload, int origin, boolean stays) {
        try {
            DropReason r = receiveInto(x, frame, offset, length, offload, origin, stays);
            if (x.memory.canShrink()) MappedMemoryFault.surface();
            return r;
        } catch (InternalError e) {
            if (!MappedMemoryFault.in(e, x.memory)) throw e;
            return brokenRx(x, "rx: " + MappedMemoryFault.describe(e));
        }
    }

    private DropReason receiveInto(RxQueue x, MemorySegment frame, long offset, int length, FrameOffload offload, int origin, boolean stays) {
        if (rxBroken) return drop(DropReason.RING_FAULT);
        if (length > (offload.isGso() ? FrameOffload.MAX_GSO_FRAME : maxFrame)) return drop(DropReason.TOO_BIG);
        SplitVirtqueue q = x.ring;
        if (q == null) return drop(DropReason.PORT_DOWN);
        GuestMemory mem = x.memory;
        DescriptorChain rxFirst = x.first, rxMore = x.more;
        DeliveryLog log = deliveryLog;
        long source = log == null || origin == NetPort.NO_ORIGIN ? 0 : MacAddress.read(frame, offset + 6);
        if (log != null && log.alreadyDelivered(source, origin)) {
            rxReplaysSkipped++;   // our driver has it from before the restart: delivered, once
            return null;
        }
        try {
            if (!q.pop(rxFirst)) return drop(DropReason.NO_RX_BUFFER);
            if (rxFirst.readableCount() != 0) return brokenRx(x, "rx buffer " + rxFirst.head() + " has device-readable descriptors");
            long cap = rxFirst.writableBytes();
            if (!mergeable) {
                if (cap < hdrLen + (long) length) {
                    q.unpop(rxFirst.head());
                    return drop(DropReason.TOO_BIG);
                }
                // The frame before its header, as with mergeable buffers (the order does not matter for faults: receive
                // makes any fault in here surface inside its try).
                copyIn(x, mem, rxFirst, frame, offset, length, stays && log == null);
                header(x, mem, rxFirst, offload, 1, log == null);
                q.pushUsed(rxFirst.head(), hdrLen + length);
            } else {
                if (cap < hdrLen) return brokenRx(x, "merge rx buffer " + rxFirst.head() + " of " + cap + " bytes cannot hold the header");
                long done = copyIn(x, mem, rxFirst, frame, offset, length, stays && log == null);
                mergeHeads[0] = rxFirst.head();
                mergeLens[0] = (int) (hdrLen + done);
                int n = 1;
                while (done < length) {
                    if (n == mergeHeads.length || !q.pop(rxMore)) {   // give every buffer back: the frame is dropped whole
                        DropReason r = n < mergeHeads.length ? DropReason.NO_RX_BUFFER : DropReason.TOO_BIG;
                        while (n > 0) q.unpop(mergeHeads[--n]);
                        return drop(r);
                    }
                    if (rxMore.readableCount() != 0) return brokenRx(x, "rx buffer " + rxMore.head() + " has device-readable descriptors");
                    long k = scatter(mem, rxMore, 0, frame, offset + done, length - done);
                    mergeHeads[n] = rxMore.head();
                    mergeLens[n] = (int) k;
                    n++;
                    done += k;
                }
                header(x, mem, rxFirst, offload, n, log == null);
                for (int i = 0; i < n; i++) q.pushUsed(mergeHeads[i], mergeLens[i]);
            }
            if (log != null) {   // the log records each frame as published: no batching with it
                log.beforePublish(source, origin, x.pair, q.nextUsed());
                x.copies.copyAll(mem);     // any a batch put off before the log was set: published with this one
                x.headers.writeAll(mem);   // any a batch held before the log was set: published with this one
                q.publishUsed();
                log.published();
            } else {
                x.pending++;     // published by the sender's flush (at the end of its batch, or right away)
                rxPending = true;
            }
            x.frames++;
            x.bytes += length;
            return null;
        } catch (QueueFault f) {
            rxBroken = true;
            report(f.getMessage());
            return drop(DropReason.RING_FAULT);
        }
    }

    /**
     * The frame's header into rx buffer {@code c}: held in {@code x}'s {@link RxHeaders} and written at publication
     * when its publication is batched ({@code batched}: no delivery log) and the 12-byte header fits the first
     * descriptor, else written now.
     */
    private void header(RxQueue x, GuestMemory mem, DescriptorChain c, FrameOffload offload, int numBuffers, boolean batched) {
        if (batched && hdrLen == SIZE && c.length(0) >= SIZE && x.headers.hold(c.segment(0), c.offset(0), c.address(0), offload, numBuffers))
            return;
        writeHeader(mem, c, offload, numBuffers);
    }

    /**
     * Writes the frame's virtio_net_hdr (num_buffers {@code numBuffers}, where the header has it) at the start of the
     * rx buffer {@code c} (device-writable only: checked by the caller). A first descriptor that holds the whole
     * header (every driver we know posts one) takes it in place, two stores; one shorter than the header (the spec
     * lets a driver split it) gets it through the scratch header, scattered.
     */
    private void writeHeader(GuestMemory mem, DescriptorChain c, FrameOffload offload, int numBuffers) {
        if (c.length(0) >= hdrLen) {
            if (hdrLen == SIZE) offload.writeVnetV1(c.segment(0), c.offset(0), numBuffers);
            else offload.writeVnet(c.segment(0), c.offset(0));   // legacy: no num_buffers
            mem.markDirty(c.address(0), hdrLen);
            return;
        }
        offload.writeVnet(rxHeader, 0);
        if (hdrLen == SIZE) rxHeader.set(LE16, NUM_BUFFERS, (short) numBuffers);
        scatter(mem, c, 0, rxHeader, 0, hdrLen);
    }

    private DropReason brokenRx(RxQueue x, String why) {
        breakRx(x, why);
        return drop(DropReason.RING_FAULT);
    }

    /** Rx stops taking frames for {@code why}, reported on this device (the caller counts what it drops). */
    private void breakRx(RxQueue x, String why) {
        rxBroken = true;
        SplitVirtqueue r = x.ring;
        if (r != null) r.counters().fault(QueueFault.Reason.BAD_DESCRIPTOR);
        report(new QueueFault(VirtioNetModel.rxQueue(x.pair), QueueFault.Reason.BAD_DESCRIPTOR, why).getMessage());
    }

    // ================================================================ counters

    /** A snapshot of the counters (racy reads of plain fields: each is exact, the set is not atomic). */
    public VirtioNetStats stats() {
        Map<DropReason, Long> d = new EnumMap<>(DropReason.class);
        for (DropReason r : DropReason.values()) if (rxDrops[r.ordinal()] != 0) d.put(r, rxDrops[r.ordinal()]);
        long notes = notificationsBefore;
        long txFrames = 0, txBytes = 0, tooBig = 0, gso = 0, badCsum = 0, inactive = 0, rxFrames = 0, rxBytes = 0;
        List<VirtioNetStats.Pair> pairs = new ArrayList<>(rxq.length);
        for (int n = 0; n < rxq.length; n++) {
            RxQueue x = rxq[n];
            TxQueue t = txq[n];
            SplitVirtqueue rr = x.ring;
            if (rr != null) notes += rr.notificationsSent();
            rxFrames += x.frames;
            rxBytes += x.bytes;
            if (t != null) {
                SplitVirtqueue tr = t.ring;
                if (tr != null) notes += tr.notificationsSent();
                txFrames += t.frames;
                txBytes += t.bytes;
                tooBig += t.dropTooBig;
                gso += t.dropGso;
                badCsum += t.dropBadCsum;
                inactive += t.dropInactive;
            }
            pairs.add(new VirtioNetStats.Pair(n, x.frames, x.bytes, t == null ? 0 : t.frames, t == null ? 0 : t.bytes));
        }
        return new VirtioNetStats(txFrames, txBytes, tooBig, gso, badCsum, inactive, rxFrames, rxBytes, d, notes,
                rxGate.stuckCloses(), workersLeftBehind, pairs);
    }

    @Override
    public String toString() {
        return "VirtioNetDevice[" + name + ", " + MacAddress.toString(params.mac()) + ", mtu " + params.mtu() + "]";
    }
}
