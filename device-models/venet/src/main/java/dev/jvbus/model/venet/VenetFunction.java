package dev.jvbus.model.venet;

import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.spi.DataPathRun;
import dev.jvbus.core.spi.DeviceContext;
import dev.jvbus.core.spi.DeviceFault;
import dev.jvbus.core.spi.DeviceFunction;
import dev.jvbus.core.spi.QueueBinding;
import dev.jvbus.core.spi.QueueSet;
import dev.jvbus.core.memory.MappedMemoryFault;
import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.ring.QueueCounters;
import dev.jvbus.core.ring.QueueWorker;
import dev.jvbus.core.ring.ioq.IoqDevice;
import dev.jvbus.core.state.ModelState;
import dev.jvbus.core.state.QueueState;
import dev.jvbus.core.sys.EventFd;
import dev.jvbus.net.DropReason;
import dev.jvbus.net.MacAddress;
import dev.jvbus.net.NetPort;
import dev.jvbus.net.Networks;
import dev.jvbus.net.PortBackend;
import dev.jvbus.net.RxGate;
import dev.jvbus.net.SwitchPort;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * One venet device: the control verbs (DEVCALL), the rx side (the switch delivers into the
 * driver's rx ring, on the sender's thread, serialised by the switch port) and the tx side (one
 * {@link QueueWorker} polling the tx ring, see {@link VenetTx}).
 *
 * <p>Threads: control methods run under the device's lock, one at a time. The tx worker alone
 * drives the tx and event rings; the delivering thread alone (under the port's delivery lock)
 * drives the rx ring. The {@link RxGate} lets control stop deliveries and wait out the one in
 * progress, for quiesce, reset, link-down and FLUSHRX, within its bound. Link-state events are
 * queued by control and written by the worker, so the event ring keeps a single producer.
 *
 * <p>Faults found by the worker or a delivery are reported through the run's {@link DataPathRun},
 * never on the finding thread: a pause holds the device's lock while it waits for the worker to
 * park, and a delivery holds the port's lock. The run also fences a worker a reset left behind
 * (stuck in a delivery into another device): when it comes back it finds its run over and touches
 * no ring of the next one.
 *
 * <p>Counters are plain fields: tx ones written by the worker, rx ones by the delivering thread.
 */
public final class VenetFunction implements DeviceFunction, NetPort {
    private final DeviceContext context;
    private final VenetSettings settings;
    private final String name;
    private long mac;

    // Capabilities granted by NEGCAP (written by control while the link is down).
    volatile boolean sg;
    volatile boolean evqLinkstate;
    volatile boolean evqTxc;

    // Running state; control thread only, except where noted.
    private boolean running;
    private boolean quiesced;
    volatile boolean link;
    private DataPathRun run = DataPathRun.NONE;
    private GuestMemory memory;
    private IoqDevice rx, tx, evq;
    private SwitchPort port;
    private QueueWorker worker;
    private VenetTx txService;

    // The rx gate and the rx ring's state (delivering thread, under the port's delivery lock).
    private final RxGate rxGate;
    private IoqDevice.Buffer rxBuf;
    private boolean rxHeld;
    /** The rx ring faulted on a delivery (reported); deliveries drop as RING_FAULT until the reset. */
    private volatile boolean rxBroken;

    // Link-state events: control produces, the worker consumes (single-producer single-consumer).
    private final byte[] linkEvents = new byte[VenetState.MAX_PENDING_LINK_EVENTS];
    private volatile int linkEvHead;   // worker
    private volatile int linkEvTail;   // control

    // One device-lifetime scratch area for SG frames (gathered, checksummed) and their descriptors.
    private MemorySegment frameScratch;
    private MemorySegment sgScratch;

    // ---- counters ----
    public long txFrames, txBytes, txDropsRunt, txDropsOversize, txDropsBadHeader, txChecksums;
    public long rxFrames, rxBytes, rxDropsNoBuffer, rxDropsTooBig, rxDropsPortDown, rxDropsRingFault, rxFlushed;
    public long eventsLinkstate, eventsTxc, eventsDropped;
    /** Tx workers a reset could not stop within the bound (stuck in a delivery); they exit when it returns. */
    public volatile long workersLeftBehind;            // control thread

    VenetFunction(DeviceContext context, VenetSettings settings) {
        this.context = context;
        this.settings = settings;
        this.mac = settings.mac();
        this.name = "venet:" + context.container() + "/" + Integer.toUnsignedString(context.devid());
        this.rxGate = new RxGate(name, () -> memory);   // a close that gives up keeps it mapped for the stuck delivery
        context.config().write(VenetModel.CONFIG_MAC.name(), MacAddress.toBytes(mac));
        context.config().write(VenetModel.CONFIG_MTU.name(), settings.mtu() & 0xFFFF);
        // On its network from hotplug on, with its MAC in the switch's table: an operator sees the port
        // before any driver comes; frames for it wait at the closed rx gate (PORT_DOWN).
        this.port = joinSwitch();
    }

    /** Held to the MAC the driver learns with MACQUERY, unless the operator turned the check off. */
    private SwitchPort joinSwitch() {
        return settings.macSpoofCheck().join(Networks.of(context).getOrCreate(settings.network()), this, mac);
    }

    public VenetSettings settings() { return settings; }

    public long mac() { return mac; }

    public boolean linkUp() { return link; }

    /** Capabilities in force, as feature bits (what NEGCAP granted). */
    public long grantedFeatures() {
        return (sg ? VenetModel.SG.mask() : 0) | (evqLinkstate ? VenetModel.EVQ_LINKSTATE.mask() : 0)
                | (evqTxc ? VenetModel.EVQ_TXC.mask() : 0);
    }

    /** The switch port while running (for its counters), else null. */
    public SwitchPort port() { return port; }

    @Override public String name() { return name; }

    @Override public PortBackend describe() { return new PortBackend.Device(Integer.toUnsignedLong(context.devid()), VenetModel.TYPE); }

    // ------------------------------------------------------------------ lifecycle

    @Override
    public void start(QueueSet queues) throws DeviceFault {
        if (running) throw new DeviceFault(name + ": started twice without a reset");
        memory = queues.memory();
        QueueBinding rxB = queues.queue(VenetWire.QUEUE_RX).orElseThrow(() -> new DeviceFault(name + ": the rx queue (0) is not set up"));
        QueueBinding txB = queues.queue(VenetWire.QUEUE_TX).orElseThrow(() -> new DeviceFault(name + ": the tx queue (1) is not set up"));
        QueueBinding evB = queues.queue(VenetWire.QUEUE_EVQ).orElse(null);
        if ((evqLinkstate || evqTxc) && evB == null)
            throw new DeviceFault(name + ": EVENTQ capabilities were granted but the event queue (2) is not set up");
        try {
            rx = ring(rxB);
            tx = ring(txB);
            evq = evB == null ? null : ring(evB);
        } catch (QueueFault f) {
            rx = tx = evq = null;
            throw new DeviceFault(name + ": " + f.getMessage(), f);
        }
        if (frameScratch == null) {
            Arena arena = Arena.ofAuto();
            frameScratch = arena.allocate(settings.maxFrame(), 8);
            sgScratch = arena.allocate(VenetWire.sgDescSize(VenetWire.SG_MAX_IOVS), 8);
        }
        rxHeld = false;
        rxBroken = false;
        run = queues.run();
        // The switch port (joined at creation) outlives resets: its counters are what an operator watches
        // across driver resets; between runs the closed rx gate drops deliveries as PORT_DOWN.
        if (port == null) throw new DeviceFault(name + " was removed: it has no switch port");
        txService = new VenetTx(this, tx, evq, memory, port, frameScratch, sgScratch, settings.maxFrame(), run);
        List<EventFd> kicks = new ArrayList<>();
        List<QueueCounters> kickCounts = new ArrayList<>();
        kicks.add(txB.kick());
        kickCounts.add(txB.counters());
        if (evB != null) {
            kicks.add(evB.kick());
            kickCounts.add(evB.counters());
        }
        DataPathRun thisRun = run;
        worker = new QueueWorker(name + "-tx", VenetWire.QUEUE_TX, txService, kicks, kickCounts, settings.idle(),
                f -> thisRun.needsReset(f.getMessage())).holding(memory);
        running = true;
        quiesced = false;
        openRxIfReady();
        worker.start();
    }

    private IoqDevice ring(QueueBinding b) throws QueueFault {
        return b.resume() != null
                ? IoqDevice.restore(b.resume(), b.memory(), b.call(), b.counters())
                : IoqDevice.attach(b.index(), b.memory(), b.config().availAddr(), b.config().size(), b.call(), true, b.counters());
    }

    @Override
    public void reset() {
        // No delivery starts; the one in progress is waited for within the gate's bound. One stuck past
        // it (in its doorbell, the last thing it does to the ring) is logged and left: it writes counters
        // when it returns, nothing else.
        rxGate.close();
        if (worker != null) {
            // On the worker's own thread this only asks it to stop. A worker stuck past the bound in a
            // delivery into another device is left behind: its run is over, so it touches no ring again.
            if (!worker.stop(QueueWorker.WAIT_BOUND)) workersLeftBehind++;
            worker = null;
        }
        run = DataPathRun.NONE;
        running = false;
        quiesced = false;
        link = false;
        sg = evqLinkstate = evqTxc = false;
        rx = tx = evq = null;
        txService = null;
        rxHeld = false;
        rxBuf = null;
        rxBroken = false;
        linkEvHead = linkEvTail;
        context.config().write(VenetModel.CONFIG_STATUS.name(), 0);
    }

    @Override
    public void close() {
        if (port != null) {
            port.leave();                 // waits for a delivery in progress
            port = null;
        }
    }

    @Override
    public void quiesce() throws DeviceFault {
        if (!running || quiesced) return;
        if (!rxGate.close())
            throw new DeviceFault(name + ": an rx delivery did not leave within " + RxGate.DEFAULT_BOUND.toMillis()
                    + " ms (stuck in its doorbell); the rx ring has no stable state to save");
        if (!worker.quiesce())
            throw new DeviceFault(name + ": the tx worker did not park within " + QueueWorker.WAIT_BOUND.toMillis()
                    + " ms (stuck in a delivery); the tx ring has no stable state to save");
        quiesced = true;
    }

    @Override
    public void resume() {
        if (!running || !quiesced) return;
        quiesced = false;
        worker.resume();
        openRxIfReady();
    }

    @Override
    public List<QueueState> saveQueues() {
        List<QueueState> out = new ArrayList<>();
        if (!running) return out;
        out.add(rx.save());
        out.add(tx.save());
        if (evq != null) out.add(evq.save());
        return out;
    }

    @Override
    public VenetState saveModel() {
        List<Boolean> pending = new ArrayList<>();
        for (int h = linkEvHead, t = linkEvTail; h != t; h++) pending.add(linkEvents[h & (linkEvents.length - 1)] != 0);
        return new VenetState(MacAddress.toString(mac), link, grantedFeatures(), pending);
    }

    /** The record's own checks ran as it was read; what is left is what it means beside the features imposed. */
    @Override
    public void restoreModel(ModelState saved) throws DeviceFault {
        VenetState state = (VenetState) saved;
        long caps = state.caps();
        long negotiated = context.negotiatedFeatures();
        if ((caps & ~negotiated) != 0)
            throw new DeviceFault("saved venet capabilities 0x" + Long.toHexString(caps) + " exceed the negotiated features 0x" + Long.toHexString(negotiated));
        long savedMac = MacAddress.parse(state.mac());
        if (savedMac != mac && port != null) {
            // Restored before any run (nothing delivers to the port yet): the port follows the saved
            // address the driver knows, in the switch's table and in the spoof check alike.
            port.leave();
            mac = savedMac;
            port = joinSwitch();
        }
        mac = savedMac;
        context.config().write(VenetModel.CONFIG_MAC.name(), MacAddress.toBytes(mac));
        link = state.linkUp();
        context.config().write(VenetModel.CONFIG_STATUS.name(), link ? 1 : 0);
        sg = VenetModel.SG.in(caps);
        evqLinkstate = VenetModel.EVQ_LINKSTATE.in(caps);
        evqTxc = VenetModel.EVQ_TXC.in(caps);
        linkEvHead = linkEvTail = 0;
        for (boolean up : state.pendingLinkEvents()) linkEvents[linkEvTail++ & (linkEvents.length - 1)] = (byte) (up ? 1 : 0);
    }

    // ------------------------------------------------------------------ DEVCALL

    @Override
    public byte[] call(int func, byte[] payload) throws DeviceFault {
        return switch (func) {
            case VenetWire.FUNC_LINKUP -> linkUp(payload);
            case VenetWire.FUNC_LINKDOWN -> linkDown(payload);
            case VenetWire.FUNC_MACQUERY -> {
                expectLength("MACQUERY", payload, VenetWire.ETH_ALEN);
                yield MacAddress.toBytes(mac);
            }
            case VenetWire.FUNC_NEGCAP -> negcap(payload);
            case VenetWire.FUNC_FLUSHRX -> flushRx(payload);
            case VenetWire.FUNC_EVQQUERY -> evqQuery(payload);
            case VenetWire.FUNC_PMTDQUERY -> throw new DeviceFault(name + ": PMTDQUERY: pre-mapped tx descriptors (VENET_CAP_PMTD) are not offered by jvbus venet");
            case VenetWire.FUNC_L4ROQUERY -> throw new DeviceFault(name + ": L4ROQUERY: layer-4 reassembly offload (VENET_CAP_GROUP_L4RO) is not offered by jvbus venet");
            default -> throw new DeviceFault(name + ": unknown venet device call " + func
                    + " (LINKUP=0 LINKDOWN=1 MACQUERY=2 NEGCAP=3 FLUSHRX=4 PMTDQUERY=5 EVQQUERY=6 L4ROQUERY=7)");
        };
    }

    private byte[] linkUp(byte[] payload) throws DeviceFault {
        expectLength("LINKUP", payload, 0);
        if (!running) throw new DeviceFault(name + ": LINKUP needs the queues running (set DRIVER_OK first)");
        if (link) throw new DeviceFault(name + ": LINKUP: the link is already up");
        link = true;
        context.config().write(VenetModel.CONFIG_STATUS.name(), 1);
        queueLinkEvent(true);
        openRxIfReady();
        wakeWorker();
        return new byte[0];
    }

    private byte[] linkDown(byte[] payload) throws DeviceFault {
        expectLength("LINKDOWN", payload, 0);
        if (!link) throw new DeviceFault(name + ": LINKDOWN: the link is already down");
        link = false;
        rxGate.close();               // the link is down either way; a stuck delivery is logged and left
        context.config().write(VenetModel.CONFIG_STATUS.name(), 0);
        queueLinkEvent(false);
        wakeWorker();
        return new byte[0];
    }

    private byte[] negcap(byte[] payload) throws DeviceFault {
        expectLength("NEGCAP", payload, VenetWire.CAPS_SIZE);
        if (link) throw new DeviceFault(name + ": NEGCAP while the link is up; capabilities are negotiated before LINKUP");
        ByteBuffer in = ByteBuffer.wrap(payload).order(ByteOrder.LITTLE_ENDIAN);
        int gid = in.getInt(0);
        int requested = in.getInt(4);
        long negotiated = context.negotiatedFeatures();
        int granted;
        switch (gid) {
            case VenetWire.CAP_GROUP_SG -> {
                int offered = VenetModel.SG.in(negotiated) ? VenetWire.CAP_SG : 0;
                granted = requested & offered;
                sg = (granted & VenetWire.CAP_SG) != 0;
            }
            case VenetWire.CAP_GROUP_EVENTQ -> {
                int offered = (VenetModel.EVQ_LINKSTATE.in(negotiated) ? VenetWire.CAP_EVQ_LINKSTATE : 0)
                        | (VenetModel.EVQ_TXC.in(negotiated) ? VenetWire.CAP_EVQ_TXC : 0);
                if (running && evq == null) offered = 0;   // too late to add the event queue
                granted = requested & offered;
                evqLinkstate = (granted & VenetWire.CAP_EVQ_LINKSTATE) != 0;
                evqTxc = (granted & VenetWire.CAP_EVQ_TXC) != 0;
            }
            default -> granted = 0;    // L4RO and unknown groups: nothing, as venet answers
        }
        byte[] reply = new byte[VenetWire.CAPS_SIZE];
        ByteBuffer.wrap(reply).order(ByteOrder.LITTLE_ENDIAN).putInt(0, gid).putInt(4, granted);
        return reply;
    }

    private byte[] flushRx(byte[] payload) throws DeviceFault {
        expectLength("FLUSHRX", payload, 0);
        if (!running || !link) throw new DeviceFault(name + ": FLUSHRX needs the link up");
        if (!rxGate.close()) {
            openRxIfReady();
            throw new DeviceFault(name + ": FLUSHRX: an rx delivery did not leave within " + RxGate.DEFAULT_BOUND.toMillis()
                    + " ms (stuck in its doorbell); nothing flushed");
        }
        try {
            IoqDevice r = rx;
            if (rxHeld) {
                rxHeld = false;
                r.complete(0);
                rxFlushed++;
            }
            while (r.poll() != null) {
                r.complete(0);
                rxFlushed++;
            }
            // Like venet, no signal: the driver called us and reclaims when the call returns.
        } catch (QueueFault f) {
            context.needsReset(f.getMessage());
            throw new DeviceFault(name + ": FLUSHRX: " + f.getMessage(), f);
        } finally {
            openRxIfReady();
        }
        return new byte[0];
    }

    private byte[] evqQuery(byte[] payload) throws DeviceFault {
        expectLength("EVQQUERY", payload, VenetWire.EVQQUERY_SIZE);
        if (link) throw new DeviceFault(name + ": EVQQUERY while the link is up");
        ByteBuffer b = ByteBuffer.wrap(payload.clone()).order(ByteOrder.LITTLE_ENDIAN);
        int flags = b.getInt(VenetWire.EVQQUERY_FLAGS);
        if (flags != 0) throw new DeviceFault(name + ": EVQQUERY flags must be 0, got 0x" + Integer.toHexString(flags));
        b.putInt(VenetWire.EVQQUERY_EVSIZE, VenetWire.EVQ_EVSIZE);
        b.putInt(VenetWire.EVQQUERY_DPID, 0);                  // no descriptor pool: event buffers are guest addresses
        b.putInt(VenetWire.EVQQUERY_QID, VenetWire.QUEUE_EVQ);
        return b.array();
    }

    private void expectLength(String verb, byte[] payload, int length) throws DeviceFault {
        int got = payload == null ? 0 : payload.length;
        if (got != length)
            throw new DeviceFault(name + ": " + verb + " takes a " + length + "-byte payload, got " + got + " bytes");
    }

    // ------------------------------------------------------------------ rx (the switch delivers here)

    @Override
    public DropReason deliver(MemorySegment frame, long offset, int length) {
        try {
            if (!rxGate.enter()) {
                rxDropsPortDown++;
                return DropReason.PORT_DOWN;
            }
            if (rxBroken) {
                rxDropsRingFault++;
                return DropReason.RING_FAULT;
            }
            if (length > settings.maxFrame()) {
                rxDropsTooBig++;
                return DropReason.TOO_BIG;
            }
            IoqDevice r = rx;
            if (!rxHeld) {
                IoqDevice.Buffer b = r.poll();
                if (b == null) {
                    rxDropsNoBuffer++;
                    return DropReason.NO_RX_BUFFER;
                }
                rxBuf = b;
                rxHeld = true;
            }
            IoqDevice.Buffer b = rxBuf;
            if (b.length() < length) {       // kept for a smaller frame
                rxDropsTooBig++;
                return DropReason.TOO_BIG;
            }
            MemorySegment.copy(frame, offset, b.segment(), b.offset(), length);
            rxHeld = false;
            r.complete(length);
            r.notifyDriver();
            rxFrames++;
            rxBytes += length;
            if (memory.canShrink()) MappedMemoryFault.surface();   // a fault in here is thrown here (MappedMemoryFault)
            return null;
        } catch (QueueFault f) {
            rxBroken = true;
            rxDropsRingFault++;
            run.needsReset(f.getMessage());   // never blocks: we hold the port's lock
            return DropReason.RING_FAULT;
        } catch (InternalError e) {
            // SIGBUS on this device's rx memory, on the sender's thread: this device's fault, not the sender's, if its
            // memory file did shrink; a fault without that evidence is the sender's own (its frame's memory), rethrown.
            if (!MappedMemoryFault.in(e, memory)) throw e;
            rxBroken = true;
            rxDropsRingFault++;
            run.needsReset(name + ": rx: " + MappedMemoryFault.describe(e));
            return DropReason.RING_FAULT;
        } finally {
            rxGate.leave();
        }
    }

    /** Lets deliveries in when the ring runs, the link is up and nothing stopped them. */
    private void openRxIfReady() {
        if (running && !quiesced && link && !rxBroken) rxGate.open();
    }

    /** A snapshot of the counters. */
    public VenetStats stats() {
        return new VenetStats(txFrames, txBytes, txDropsRunt, txDropsOversize, txDropsBadHeader, txChecksums,
                rxFrames, rxBytes, rxDropsNoBuffer, rxDropsTooBig, rxDropsPortDown, rxDropsRingFault, rxFlushed,
                eventsLinkstate, eventsTxc, eventsDropped, rxGate.stuckCloses(), workersLeftBehind);
    }

    // ------------------------------------------------------------------ events (control side)

    private void queueLinkEvent(boolean up) {
        if (!evqLinkstate || evq == null) return;
        int t = linkEvTail;
        if (t - linkEvHead == linkEvents.length) {
            eventsDropped++;
            return;
        }
        linkEvents[t & (linkEvents.length - 1)] = (byte) (up ? 1 : 0);
        linkEvTail = t + 1;
    }

    private void wakeWorker() {
        QueueWorker w = worker;
        if (w != null) w.doorbellWait().wakeup();
    }

    // ------------------------------------------------------------------ events (worker side)

    /** Next pending link state (0 down, 1 up), or -1. Worker thread. */
    int peekLinkEvent() {
        int h = linkEvHead;
        return h == linkEvTail ? -1 : linkEvents[h & (linkEvents.length - 1)];
    }

    void popLinkEvent() {
        linkEvHead = linkEvHead + 1;
    }
}
