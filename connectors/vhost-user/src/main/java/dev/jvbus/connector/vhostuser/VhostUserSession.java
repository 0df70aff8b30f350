package dev.jvbus.connector.vhostuser;

import static dev.jvbus.core.bus.DeviceStatus.ACKNOWLEDGE;
import static dev.jvbus.core.bus.DeviceStatus.DRIVER;
import static dev.jvbus.core.bus.DeviceStatus.DRIVER_OK;
import static dev.jvbus.core.bus.DeviceStatus.FEATURES_OK;

import dev.jvbus.connector.vhostuser.protocol.Codec;
import dev.jvbus.connector.vhostuser.protocol.Message;
import dev.jvbus.connector.vhostuser.protocol.ProtocolFeature;
import dev.jvbus.connector.vhostuser.protocol.Request;
import dev.jvbus.connector.vhostuser.protocol.VhostUserException;
import dev.jvbus.connector.vhostuser.protocol.Wire;
import dev.jvbus.core.bus.Attachment;
import dev.jvbus.core.bus.DevId;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.bus.DeviceException;
import dev.jvbus.core.bus.DeviceObserver;
import dev.jvbus.core.feature.VirtioFeatures;
import dev.jvbus.core.memory.DirtyLog;
import dev.jvbus.core.memory.GuestMemory;
import dev.jvbus.core.spi.QueueConfig;
import dev.jvbus.core.spi.QueueSpec;
import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.ring.virtio.SplitInflightLog;
import dev.jvbus.core.ring.virtio.SplitRingResume;
import dev.jvbus.core.doorbell.Notifier;
import dev.jvbus.core.state.QueueState;
import dev.jvbus.core.sys.Errno;
import dev.jvbus.core.sys.EventFd;
import dev.jvbus.core.sys.FdStat;
import dev.jvbus.core.sys.LingeringMappings;
import dev.jvbus.core.sys.MappingRule;
import dev.jvbus.core.sys.Memfd;
import dev.jvbus.core.sys.OwnedFd;
import dev.jvbus.core.sys.OwnedFds;
import dev.jvbus.core.sys.UnixConnection;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * One front-end connection (QEMU, DPDK virtio_user) driving one device through vhost-user.
 *
 * <p>vhost-user has no virtio status register: the front-end negotiates features, shares memory and
 * starts and stops rings one by one. The session turns that into our device's status machine:
 * SET_FEATURES negotiates (ACKNOWLEDGE, DRIVER, ack, FEATURES_OK), and once every ring the device
 * needs is started and placed the device goes live (DRIVER_OK) with the rings that are ready, each
 * resuming from its base. From then on a message about ring N touches ring N only, as the device's
 * per-queue stop and start allow (vhost-user.rst, "Ring states"; virtio 1.2 queue reset):
 * GET_VRING_BASE stops ring N and answers the next available index it would have consumed;
 * SET_VRING_KICK starts it (or restarts it alone, with its new kick); SET_VRING_CALL and
 * SET_VRING_ERR re-point its doorbells in place; SET_VRING_NUM, ADDR and BASE are for a stopped ring.
 * A memory-table change stops the running rings, swaps the memory and starts each again: from its
 * exact position where its placement did not move, else from its base as the ring in memory says.
 *
 * <p>Errors: a malformed or refused message fails that request (a non-zero REPLY_ACK when the
 * front-end asked for one, a zero-length reply for GET_CONFIG) and the session goes on; only an
 * impossible header closes the connection. Nothing here can take the bus down: the session owns
 * one device and its own fds.
 *
 * <p>Fds: every fd that arrives with a message is owned by that message's {@link OwnedFds} (at most
 * {@value Wire#MAX_REGIONS} per message, and no more than the request carries once its header is
 * read); a handler takes the ones it keeps, and the rest are closed once when the message is done,
 * whether it was accepted or refused. Memory fds are checked with {@link MappingRule#SHARED_FILE}
 * and mapped themselves (see {@link MemoryTable} for the risk that rule leaves).
 *
 * <p>Limits ({@link VhostUserLimits}): a front-end that has not sent SET_OWNER within
 * {@code ownerTimeout} of connecting is dropped; memory regions and mapped bytes are bounded.
 */
public final class VhostUserSession implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(VhostUserSession.class.getName());

    /** Protocol features this back-end implements. */
    public static final long PROTOCOL_FEATURES = ProtocolFeature.maskOf(
            ProtocolFeature.MQ, ProtocolFeature.REPLY_ACK, ProtocolFeature.RESET_DEVICE, ProtocolFeature.CONFIGURE_MEM_SLOTS,
            ProtocolFeature.LOG_SHMFD, ProtocolFeature.INFLIGHT_SHMFD, ProtocolFeature.RARP);

    private final UnixConnection conn;
    private final VhostUserLimits limits;
    private final Device device;
    private final Attachment attachment;
    private final Vring[] rings;
    private final byte[] buf = new byte[Wire.HEADER + Wire.MAX_PAYLOAD];

    private long protocolFeatures;
    private boolean protocolFeaturesAcked;   // VHOST_USER_F_PROTOCOL_FEATURES was in SET_FEATURES
    private long virtioFeatures;
    private boolean featuresSet;
    private MemoryTable memory = MemoryTable.empty();
    /** Regions let go while a worker that did not stop still holds them (the exposure's, for operators). */
    private final LingeringMappings lingering;
    /** What {@link #memory} maps, for metrics read from other threads (written on the session's thread). */
    private volatile long mappedBytes;
    private final DirtyLogging logging;   // migration: the front-end's log and LOG_ALL
    private EventFd logEventFd;
    /** INFLIGHT_SHMFD: where the rings record their heads in flight, kept by the front-end across our restarts; or null. */
    private InflightRegion inflight;
    /** The log each ring records into {@link #inflight} with (set where it starts from the buffer), null if none. */
    private final SplitInflightLog[] inflightLogs;
    /**
     * ADD_MEM_REG of a region the table holds already, by the extra holders: QEMU up to 9.x opens one vhost device
     * per virtio-net queue pair on one connection, and each adds (and later removes) every region itself (its
     * ADD/REM_MEM_REG are not among the requests it sends once per connection). The region is mapped once; it goes
     * when its last holder removes it. At most one holder per queue pair of the device.
     */
    private final java.util.Map<RegionKey, Integer> regionHolders = new java.util.HashMap<>();
    private boolean live;   // this session took the device to DRIVER_OK, and has not reset it since
    private volatile boolean closed;
    private volatile boolean owned;   // SET_OWNER arrived: the front-end is a front-end, not an idle connection
    private String lastError;

    /**
     * Attaches to {@code device} for the front-end on {@code conn}.
     *
     * @throws DeviceException if another driver holds the device
     */
    public VhostUserSession(UnixConnection conn, Device device, String holder) {
        this(conn, device, holder, VhostUserLimits.DEFAULTS);
    }

    /**
     * Attaches to {@code device} for the front-end on {@code conn}, within the operator's {@code limits}.
     *
     * @throws DeviceException if another driver holds the device
     */
    public VhostUserSession(UnixConnection conn, Device device, String holder, VhostUserLimits limits) {
        this(conn, device, holder, limits, new LingeringMappings());
    }

    /**
     * As above; memory this session lets go while a worker that did not stop still holds it is kept in
     * {@code lingering} (its exposure's, for operators) until that worker has left.
     */
    public VhostUserSession(UnixConnection conn, Device device, String holder, VhostUserLimits limits, LingeringMappings lingering) {
        this.lingering = lingering;
        this.conn = conn;
        this.limits = limits;
        this.device = device;
        this.rings = new Vring[device.queues().count()];
        for (int i = 0; i < rings.length; i++) rings[i] = new Vring(i);
        this.inflightLogs = new SplitInflightLog[rings.length];
        this.logging = new DirtyLogging("vhost-user " + device.container() + "/" + device.devid() + " " + device.type());
        this.attachment = device.attach(holder, new DeviceObserver() {
            @Override public void needsReset(DevId devid, String reason) { signalErrors(reason); }

            @Override public void removed(DevId devid) { close(); }
        });
    }

    public Device device() { return device; }

    /** True once the session has ended (or is ending): the device is, or is being, released. */
    public boolean isClosed() { return closed; }

    /** True if the front-end has hung up, even if this session has not read the end of stream yet. */
    public boolean frontEndGone() { return closed || conn.peerHungUp(); }

    /** The reason of the last refused request (for operators and tests). */
    public synchronized String lastError() { return lastError; }

    /**
     * Dirty logging as the front-end used it in this session: how many logs it handed over
     * (SET_LOG_BASE), how often it switched VHOST_F_LOG_ALL on, whether logging is on now, and
     * how many page marks the device made in its logs. A migrating QEMU sets a log and LOG_ALL
     * during precopy and switches LOG_ALL off when the migration ends.
     */
    public record LogActivity(int logBasesSet, int logAllEnabled, boolean active, long pagesMarked) {
        /** In words, for a log line. */
        public String summary() {
            return "dirty log " + (active ? "on" : "off") + ", " + pagesMarked + " page marks in this session";
        }
    }

    public LogActivity logActivity() {
        return logging.activity();
    }

    /** Serves messages until the front-end goes away or breaks the framing; then releases everything. */
    public void serve() {
        Thread deadline = armOwnerDeadline();
        try {
            while (!closed) {
                try (OwnedFds fds = OwnedFds.upTo(Wire.MAX_REGIONS)) {
                    if (conn.recvFully(buf, 0, Wire.HEADER, fds) < Wire.HEADER) break;   // the front-end closed
                    Codec.Header h = Codec.header(ByteBuffer.wrap(buf, 0, Wire.HEADER));
                    // The request fixes how many fds it carries: refuse any more from here on.
                    fds.lowerLimit(h.request() == null ? 0 : h.request().maxFds());
                    if (conn.recvFully(buf, Wire.HEADER, h.size(), fds) < h.size()) break;
                    dispatch(h, ByteBuffer.wrap(buf, Wire.HEADER, h.size()).slice(), fds);
                } catch (VhostUserException e) {
                    // only fatal ones reach here
                    LOG.warning(() -> "vhost-user " + device + ": " + e.getMessage() + "; closing the connection");
                    break;
                }
            }
        } catch (Errno.SysException e) {
            // The front-end went away while we answered (EPIPE, ECONNRESET): an ordinary end of a session.
            if (!closed) LOG.info(() -> "vhost-user " + device + ": front-end gone (" + e.getMessage() + ")");
        } catch (InternalError e) {
            // A SIGBUS on the front-end's memory (a file truncated under our mapping, see MemoryTable): this session only.
            if (!closed) LOG.warning(() -> "vhost-user " + device + ": front-end memory faulted (" + e.getMessage()
                    + "); was its memory file truncated? closing the connection");
        } catch (RuntimeException e) {
            if (!closed) LOG.log(Level.WARNING, "vhost-user " + device + ": session failed", e);
        } finally {
            if (deadline != null) deadline.interrupt();
            close();
        }
    }

    /**
     * Drops the connection if SET_OWNER has not arrived within {@link VhostUserLimits#ownerTimeout()}:
     * the device serves one front-end at a time, so a peer that connects and says nothing would keep
     * it from its real front-end for good. A virtual thread: it only sleeps, so it costs no platform
     * thread and no carrier while it waits.
     */
    private Thread armOwnerDeadline() {
        try {
            return Thread.ofVirtual().name("vhost-user " + device + " owner deadline").start(() -> {
                try {
                    Thread.sleep(limits.ownerTimeout());
                } catch (InterruptedException ownedOrEnded) {
                    return;
                }
                if (owned || closed) return;
                synchronized (this) { lastError = "no SET_OWNER within " + limits.ownerTimeout().toMillis() + " ms (limit: VhostUserLimits.ownerTimeout)"; }
                LOG.warning(() -> "vhost-user " + device + ": no SET_OWNER within " + limits.ownerTimeout().toMillis()
                        + " ms (limit: VhostUserLimits.ownerTimeout); closing the connection");
                conn.close();   // wakes the session thread's receive: it ends the session
            });
        } catch (OutOfMemoryError e) {
            // Without the deadline this connection could hold the device forever: refuse it rather than serve it unguarded.
            LOG.warning(() -> "vhost-user " + device + ": cannot start the SET_OWNER deadline (" + e.getMessage() + "); closing the connection");
            conn.close();
            return null;
        }
    }

    private void dispatch(Codec.Header h, ByteBuffer payload, OwnedFds fds) throws VhostUserException {
        Request r = h.request();
        if (fds.overLimit()) {
            // Every fd it brought is closed already; the bytes were read, so the stream goes on.
            refused(h, r == null ? "request " + Integer.toUnsignedString(h.requestId()) : r.toString(),
                    "carried more fds than it may (limit: " + fds.limit() + " for this request, at most " + Wire.MAX_REGIONS
                            + " per message); every fd it carried was closed");
            return;
        }
        Message m;
        try {
            m = Codec.decode(h, payload, fds.count());
        } catch (VhostUserException e) {
            fds.close();
            if (r == null) {
                // Unknown request: if the front-end waits for an ack, fail it so it does not hang.
                synchronized (this) { lastError = e.getMessage(); }
                LOG.info(() -> "vhost-user " + device + ": " + e.getMessage());
                if ((h.flags() & Wire.FLAG_NEED_REPLY) != 0 && ProtocolFeature.REPLY_ACK.in(protocolFeatures))
                    send(Codec.replyU64(h.requestId(), 1));
                return;
            }
            refused(r, h.flags(), e.getMessage());
            return;
        }
        LOG.fine(() -> "vhost-user " + device + ": " + m + " fds=" + fds.count());
        try {
            handle(m, fds);
            fds.close();   // the fds nobody took, before the answer: the front-end may count on it
            if (m.needReply() && !r.alwaysReplies() && ProtocolFeature.REPLY_ACK.in(protocolFeatures))
                send(Codec.replyU64(r, 0));
        } catch (VhostUserException | DeviceException e) {
            fds.close();
            refused(r, h.flags(), e.getMessage());
        }
    }

    /** Refuses a message whose fds broke the limit, known request or not. */
    private void refused(Codec.Header h, String what, String why) {
        Request r = h.request();
        if (r != null) {
            refused(r, h.flags(), what + " " + why);
            return;
        }
        synchronized (this) { lastError = what + " " + why; }
        LOG.info(() -> "vhost-user " + device + ": refused " + what + ": " + why);
        if ((h.flags() & Wire.FLAG_NEED_REPLY) != 0 && ProtocolFeature.REPLY_ACK.in(protocolFeatures))
            send(Codec.replyU64(h.requestId(), 1));
    }

    /** Reports a refused request the way the spec allows: a non-zero ack, or a zero-length reply where one is due. */
    private void refused(Request r, int flags, String why) {
        synchronized (this) { lastError = why; }
        LOG.info(() -> "vhost-user " + device + ": refused " + (r == null ? "request" : r) + ": " + why);
        if (r == null) return;
        if (r == Request.GET_CONFIG) {
            send(Codec.replyConfig(r, 0, 0, new byte[0]));
        } else if (r == Request.GET_INFLIGHT_FD) {
            // The spec's "no buffer": size 0 and no fd (QEMU then tracks nothing), in the reply size QEMU checks for.
            send(Codec.replyInflight(r, 0, 0, 0, 0));
        } else if (r.alwaysReplies()) {
            // A GET_* the front-end waits for: answer 0 rather than leave it hanging.
            send(r == Request.GET_VRING_BASE ? Codec.replyVringState(r, 0, 0) : Codec.replyU64(r, 0));
        } else if ((flags & Wire.FLAG_NEED_REPLY) != 0 && ProtocolFeature.REPLY_ACK.in(protocolFeatures)) {
            send(Codec.replyU64(r, 1));
        }
    }

    /** The queue pairs the device has (GET_QUEUE_NUM): its rings two by two, a control queue after them left out. */
    private int queuePairs() {
        return Math.max(1, rings.length / 2);
    }

    /**
     * {@link #PROTOCOL_FEATURES}, whatever the device's pairs: vhost-user.rst asks back-ends to implement
     * PROTOCOL_F_MQ "even for devices with a fixed number of virtqueues" (it is how a front-end learns the number:
     * GET_QUEUE_NUM says 1 for a one-pair device, whose guest is offered no VIRTIO_NET_F_MQ).
     */
    private long protocolFeaturesOffered() {
        return PROTOCOL_FEATURES;
    }

    private void handle(Message m, OwnedFds fds) throws VhostUserException {
        switch (m.request()) {
            case GET_FEATURES -> send(Codec.replyU64(m.request(),
                    attachment.offeredFeatures() | (1L << Wire.F_PROTOCOL_FEATURES) | (1L << Wire.F_LOG_ALL)));
            case SET_FEATURES -> setFeatures(((Message.U64) m.body()).value());
            case GET_PROTOCOL_FEATURES -> send(Codec.replyU64(m.request(), protocolFeaturesOffered()));
            case SET_PROTOCOL_FEATURES -> {
                long v = ((Message.U64) m.body()).value();
                if ((v & ~protocolFeaturesOffered()) != 0)
                    throw VhostUserException.refuse("protocol features 0x" + Long.toHexString(v & ~protocolFeaturesOffered()) + " were not offered");
                protocolFeatures = v;
            }
            case SET_OWNER -> owned = true;
            case RESET_OWNER -> stopAll();   // deprecated: the spec suggests treating it as "disable all rings"
            case SET_MEM_TABLE -> {
                replaceMemory(MemoryTable.map(((Message.MemTable) m.body()).regions(), fds, limits));
                regionHolders.clear();
            }
            case ADD_MEM_REG -> {
                requireProtocol(ProtocolFeature.CONFIGURE_MEM_SLOTS, m.request());
                Message.Region r = (Message.Region) m.body();
                if (memory.regions().contains(r)) addHolder(r);   // another queue pair's vhost device: nothing new to map
                else replaceMemory(memory.with(r, fds.get(0), limits));
            }
            case REM_MEM_REG -> {
                // The spec: an fd that comes with it is closed without being used (the message's fds are, when it is done).
                requireProtocol(ProtocolFeature.CONFIGURE_MEM_SLOTS, m.request());
                Message.Region r = (Message.Region) m.body();
                if (!dropHolder(r)) {
                    replaceMemory(memory.without(r));
                    regionHolders.remove(RegionKey.of(r));
                }
            }
            case GET_MAX_MEM_SLOTS -> send(Codec.replyU64(m.request(), limits.regionsPerSession()));
            case SET_VRING_NUM -> {
                Message.VringState s = (Message.VringState) m.body();
                Vring v = ring(s.index());
                QueueSpec spec = device.queues().queue(v.index);
                if (!spec.accepts(s.num()))
                    throw VhostUserException.refuse("ring " + v.index + " size " + s.num() + " must be " + spec.sizeRule());
                requireStopped(v, m.request());
                v.num = s.num();
            }
            case SET_VRING_ADDR -> {
                Message.VringAddr a = (Message.VringAddr) m.body();
                Vring v = ring(a.index());
                // While a ring runs the front-end may only toggle VHOST_VRING_F_LOG (start/stop of migration).
                boolean sameRing = v.addr != null && v.addr.desc() == a.desc() && v.addr.avail() == a.avail() && v.addr.used() == a.used();
                if (!sameRing) requireStopped(v, m.request());
                v.addr = a;
            }
            case SET_VRING_BASE -> {
                Message.VringState s = (Message.VringState) m.body();
                Vring v = ring(s.index());
                requireStopped(v, m.request());
                if ((s.num() & ~0xffff) != 0) throw VhostUserException.refuse("ring " + v.index + " base " + s.num() + " is not a u16");
                v.base = s.num();
            }
            case GET_VRING_BASE -> {
                Vring v = ring(((Message.VringState) m.body()).index());
                QueueState stopped = stopRing(v);   // this ring only: its position becomes its base
                v.started = false;
                // A hand-over (migration, reconnect) starts from this answer: the one line that says where it was.
                LOG.info(() -> "vhost-user " + device + ": GET_VRING_BASE: ring " + v.index + (stopped == null
                        ? " gave no position (it was not running, or did not stop: the line before says why); answering its base " + v.base
                        : " stopped at " + v.base + " (used index " + stopped.nextUsed() + ", " + stopped.inFlight().size() + " in flight)")
                        + "; " + logging.activity().summary());
                send(Codec.replyVringState(m.request(), v.index, v.base));
            }
            case SET_VRING_KICK -> {
                Vring v = ring(vringIndex(m));
                if (fds.count() == 0) throw VhostUserException.refuse("ring " + v.index + ": polling without a kick fd is not supported");
                EventFd kick = adoptEventFd(fds.get(0), "kick", v.index);
                // A running ring restarts alone (its worker waits on the old kick); the others run on.
                QueueState held = stopRing(v);
                if (v.kick != null) v.kick.close();
                v.kick = kick;
                v.started = true;
                if (live) startRing(v, held);
                else startDevice();
            }
            case SET_VRING_CALL -> {
                Vring v = ring(vringIndex(m));
                EventFd call = fds.count() == 0 ? null : adoptEventFd(fds.get(0), "call", v.index);
                EventFd old = v.call;
                v.call = call;
                // In place: a running ring signals the new fd from its next signal on. The old fd may be
                // signalled once more by a worker that read it just before; an EventFd closed under a
                // signal does nothing to anyone else's fd.
                if (live) attachment.replaceCall(v.index, callOf(v));
                if (old != null) old.close();
            }
            case SET_VRING_ERR -> {
                Vring v = ring(vringIndex(m));
                EventFd err = fds.count() == 0 ? null : adoptEventFd(fds.get(0), "err", v.index);
                v.replaceErr(err);   // never closes the old one under a signalling thread
            }
            case GET_QUEUE_NUM -> {
                // vhost-user.rst: GET_QUEUE_NUM "should be sent only when VHOST_USER_PROTOCOL_F_MQ is set". A front-end
                // that asks without having acked it is out of protocol: refused like
                // any request without its protocol feature, which answers this GET_* with 0 so it does not hang.
                requireProtocol(ProtocolFeature.MQ, m.request());
                send(Codec.replyU64(m.request(), queuePairs()));
            }
            case SET_VRING_ENABLE -> {
                Message.VringState s = (Message.VringState) m.body();
                Vring v = ring(s.index());
                // QEMU sends this as soon as the back-end OFFERS VHOST_USER_F_PROTOCOL_FEATURES (it checks
                // GET_FEATURES, not what it acked), e.g. when the guest driver sets up queues before
                // SET_FEATURES. Keep the state; it only gates rings once the feature is acked (see active()).
                // A running ring is enabled or disabled in place: "started but disabled" rings keep running
                // without side effects, so no restart (and no lost position) is needed.
                v.enabled = s.num() != 0;
                if (live && ready(v) && !attachment.isQueueRunning(v.index)) startRing(v, null);   // held back until enabled
                else if (live) attachment.setQueueActive(v.index, active(v));
                else if (inflight != null) startDevice();   // the last ring it waited for may be this one
            }
            case RESET_DEVICE -> {
                requireProtocol(ProtocolFeature.RESET_DEVICE, m.request());
                resetDevice();
            }
            case GET_CONFIG -> throw VhostUserException.refuse("GET_CONFIG without VHOST_USER_PROTOCOL_F_CONFIG");
            case SEND_RARP -> sendRarp(((Message.U64) m.body()).value());
            case SET_CONFIG, NET_SET_MTU, SET_STATUS ->
                    throw VhostUserException.refuse(m.request() + " needs a protocol feature this back-end does not offer");
            case GET_STATUS -> throw VhostUserException.refuse("GET_STATUS without VHOST_USER_PROTOCOL_F_STATUS");
            case SET_LOG_BASE -> {
                requireProtocol(ProtocolFeature.LOG_SHMFD, m.request());
                setLogBase((Message.Log) m.body(), fds.get(0));
                send(Codec.replyU64(m.request(), 0));
            }
            case GET_INFLIGHT_FD -> {
                requireProtocol(ProtocolFeature.INFLIGHT_SHMFD, m.request());
                requireNoRingRunning(m.request());
                InflightRegion next = InflightRegion.create((Message.Inflight) m.body(), rings.length, limits);
                replaceInflight(next);
                Message.Inflight d = next.description();
                LOG.info(() -> "vhost-user " + device + ": GET_INFLIGHT_FD: made an inflight buffer of " + d.mmapSize() + " bytes for "
                        + d.numQueues() + " queues of " + d.queueSize());
                sendWithFd(Codec.replyInflight(m.request(), d.mmapSize(), d.mmapOffset(), d.numQueues(), d.queueSize()), next.fd());
            }
            case SET_INFLIGHT_FD -> {
                requireProtocol(ProtocolFeature.INFLIGHT_SHMFD, m.request());
                requireNoRingRunning(m.request());
                replaceInflight(InflightRegion.adopt((Message.Inflight) m.body(), fds.get(0), rings.length, limits));
                LOG.info(() -> "vhost-user " + device + ": SET_INFLIGHT_FD: the rings resume from the front-end's inflight buffer");
            }
            case SET_LOG_FD -> {
                EventFd e = adoptEventFd(fds.get(0), "log", -1);
                if (logEventFd != null) logEventFd.close();
                logEventFd = e;   // we never need to wake the front-end about the log; kept to close with the session
            }
        }
    }

    // ---- migration done ----

    /**
     * VHOST_USER_SEND_RARP: QEMU, after a migration of a guest that did not negotiate GUEST_ANNOUNCE, asks
     * us to broadcast the guest's RARP so its network learns where it now is. The MAC is the first 6 bytes of
     * the u64 in wire order (QEMU copies it into an otherwise uninitialised payload, so the last two bytes are
     * noise and are not checked). The device sends the frame from its own port; a bad MAC fails this request.
     */
    private void sendRarp(long payload) throws VhostUserException {
        requireProtocol(ProtocolFeature.RARP, Request.SEND_RARP);
        if (!featuresSet) throw VhostUserException.refuse("SEND_RARP before SET_FEATURES: no guest to announce yet");
        byte[] mac = new byte[6];
        for (int i = 0; i < 6; i++) mac[i] = (byte) (payload >>> (8 * i));
        try {
            attachment.announce(mac);
        } catch (dev.jvbus.core.spi.DeviceFault e) {
            throw VhostUserException.refuse("SEND_RARP: " + e.getMessage());
        }
    }

    // ---- features ----

    /** Validates the whole request first: a refused SET_FEATURES changes nothing, LOG_ALL included. */
    private void setFeatures(long value) throws VhostUserException {
        long v = value & ~(1L << Wire.F_PROTOCOL_FEATURES) & ~(1L << Wire.F_LOG_ALL);
        long offered = attachment.offeredFeatures();
        if ((v & ~offered) != 0)
            throw VhostUserException.refuse("SET_FEATURES acks features not offered: "
                    + device.featureCatalog().names(v & ~offered));
        boolean same = featuresSet && v == virtioFeatures;
        if (!same && anyRingRunning()) throw VhostUserException.refuse("features cannot change while rings run; stop them first");

        protocolFeaturesAcked = (value & (1L << Wire.F_PROTOCOL_FEATURES)) != 0;
        // VHOST_F_LOG_ALL is the front-end's migration switch, not a device feature: it may flip while rings run.
        logging.logAll((value & (1L << Wire.F_LOG_ALL)) != 0);
        if (same) {
            if (live) for (Vring r : rings) if (ready(r)) attachment.setQueueActive(r.index, active(r));
            return;
        }
        negotiate(v);
        virtioFeatures = v;
        featuresSet = true;
    }

    /** Walks the device through ACKNOWLEDGE, DRIVER, ack, FEATURES_OK. */
    private void negotiate(long features) {
        live = false;
        java.util.Arrays.fill(inflightLogs, null);   // the reset below forgets them: rings start from the buffer again
        attachment.reset();
        attachment.writeStatus(ACKNOWLEDGE | DRIVER);
        // QEMU's SET_FEATURES is the part of its guest's features it has us serve: it keeps the control queue
        // (CTRL_VQ) to itself and forwards MQ and GUEST_ANNOUNCE, so requirements among them are its to check.
        attachment.ackServedFeatures(features);
        attachment.writeStatus(ACKNOWLEDGE | DRIVER | FEATURES_OK);
    }

    // ---- memory ----

    /** Bytes of the front-end's memory this session has mapped now (its memory table). */
    public long mappedBytes() {
        return mappedBytes;
    }

    /**
     * A new memory table quiesces only what it must: the running rings stop (each alone), the memory
     * is swapped, and each starts again where it stopped. A ring whose placement did not move carries
     * on from its exact position (in-flight buffers included); one the new table moved restarts from
     * its base as the ring in memory says. The device stays live and keeps its features.
     */
    private void replaceMemory(MemoryTable next) {
        QueueState[] held = new QueueState[rings.length];
        boolean[] wasStarted = new boolean[rings.length];
        for (Vring v : rings) {
            wasStarted[v.index] = v.started;
            if (v.started) held[v.index] = stopRing(v);
        }
        MemoryTable old = memory;
        memory = next;
        mappedBytes = next.mappedBytes();
        if (next.guestMemory().canShrink() && !old.guestMemory().canShrink())
            LOG.info(() -> "vhost-user " + device + ": the front-end's memory file is not sealed against shrinking (F_SEAL_SHRINK):"
                    + " a truncation under our mapping will fault this device only");

        logging.memory(next.guestMemory());
        if (live) attachment.setMemory(next.guestMemory());   // no ring runs now
        MemoryTable.retire(old, next, lingering);   // a region a stuck worker holds stays mapped until it left
        if (live) for (Vring v : rings) if (wasStarted[v.index]) startRing(v, held[v.index]);
    }

    /** A region as REM_MEM_REG names it (MemoryTable#without matches these three). */
    private record RegionKey(long guestAddress, long userAddress, long size) {
        static RegionKey of(Message.Region r) { return new RegionKey(r.guestAddress(), r.userAddress(), r.size()); }
    }

    private void addHolder(Message.Region r) throws VhostUserException {
        int extra = regionHolders.getOrDefault(RegionKey.of(r), 0);
        int pairs = Math.max(1, rings.length / 2);
        if (extra + 1 >= pairs)
            throw VhostUserException.refuse("ADD_MEM_REG: region at guest 0x" + Long.toHexString(r.guestAddress()) + " added "
                    + (extra + 2) + " times (once per queue pair at most: " + pairs + ")");
        regionHolders.put(RegionKey.of(r), extra + 1);
    }

    /** True if another holder still has {@code r} (it stays mapped). */
    private boolean dropHolder(Message.Region r) {
        RegionKey k = RegionKey.of(r);
        Integer extra = regionHolders.get(k);
        if (extra == null) return false;
        if (extra == 1) regionHolders.remove(k);
        else regionHolders.put(k, extra - 1);
        return true;
    }

    // ---- inflight tracking ----

    /**
     * A new inflight buffer: the rings record into it from their next start (none runs now: the rings of a
     * stopped device are started again after it, and a running ring's record must not move under it).
     */
    private void replaceInflight(InflightRegion next) {
        InflightRegion old = inflight;
        inflight = next;
        for (Vring v : rings) {
            inflightLogs[v.index] = null;   // a stopped ring starts again from the new buffer, not where it stopped
            if (live) attachment.setInflightLog(v.index, null);
        }
        if (old != null) old.close();
    }

    private void requireNoRingRunning(Request r) throws VhostUserException {
        if (anyRingRunning()) throw VhostUserException.refuse(r + " while rings run; stop them with GET_VRING_BASE first");
    }

    // ---- the data path ----

    /**
     * A ring the device can run: started (kick received) and placed. Enabled or not is {@link #active}, with
     * one exception: with an inflight buffer a ring waits for SET_VRING_ENABLE before it runs. A started but
     * disabled ring must discard its tx (vhost-user.rst, Ring states), and QEMU enables only after the kick,
     * so a ring taken over after a back-end crash would throw away the very buffers the inflight buffer
     * hands out again, and those the guest queued while the back-end was down. A front-end that asked for
     * inflight tracking asked for no loss; DPDK's and rust-vmm's back-ends never run a disabled ring either.
     */
    private boolean ready(Vring v) {
        return v.started && v.configured() && (inflight == null || active(v));
    }

    /** Rings start disabled when protocol features were negotiated, enabled otherwise (vhost-user.rst, Ring states). */
    private boolean active(Vring v) {
        return v.enabled || !protocolFeaturesAcked;
    }

    private boolean anyRingRunning() {
        if (!live) return false;
        for (Vring v : rings) if (attachment.isQueueRunning(v.index)) return true;
        return false;
    }

    private static Notifier callOf(Vring v) {
        return v.call == null ? Notifier.NONE : Notifier.of(v.call);
    }

    /**
     * Takes the device live (DRIVER_OK) once every ring it needs is started and placed, with every
     * ready ring, each resuming from its base. Rings that start later start alone ({@link #startRing}).
     */
    private void startDevice() {
        if (live || !featuresSet || closed) return;
        List<Vring> go = new ArrayList<>();
        for (Vring v : rings) {
            if (ready(v)) go.add(v);
            else if (device.queues().queue(v.index).required()) return;   // wait for every ring the device needs
        }
        if (go.isEmpty()) return;
        GuestMemory mem = memory.guestMemory();
        Vring current = null;
        try {
            attachment.setMemory(mem);
            for (Vring v : go) {
                current = v;
                QueueConfig cfg = RingPlacement.of(v, memory);
                attachment.setQueue(cfg, resume(v, cfg));
                attachment.setDoorbells(v.index, v.kick, callOf(v));
                attachment.setQueueActive(v.index, active(v));
            }
            current = null;   // the device refusing to start is no one ring's fault
            attachment.writeStatus(ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
            live = true;
        } catch (VhostUserException | DeviceException e) {
            // The rings as placed cannot run (addresses outside memory, inconsistent indices): tell the
            // front-end on the ring's error fd, keep the session for it to fix things.
            ringFailed(current, e.getMessage());
            negotiate(virtioFeatures);   // forgets the half-made queue setup, keeps the features
        }
    }

    /**
     * Starts ring {@code v} alone on the live device, if it is placed: from {@code held} (where it
     * stopped) when its placement is unchanged, else from its base as the ring in memory says. A ring
     * that cannot run as placed stays stopped; its error fd tells the front-end.
     */
    private void startRing(Vring v, QueueState held) {
        if (!ready(v)) return;
        try {
            QueueConfig cfg = RingPlacement.of(v, memory);
            // Held: the ring stopped in this session, its inflight record (and the log writing it) is current.
            boolean sameLog = inflight == null || inflightLogs[v.index] != null;
            QueueState resume = held != null && sameLog && RingPlacement.same(cfg, held) ? held : resume(v, cfg);
            attachment.setQueueActive(v.index, active(v));
            attachment.startQueue(cfg, resume, v.kick, callOf(v));
        } catch (VhostUserException | DeviceException e) {
            ringFailed(v, e.getMessage());
        }
    }

    /** Stops ring {@code v} alone if it runs, keeping its position as its base; returns that position, or null. */
    private QueueState stopRing(Vring v) {
        if (!live) return null;
        try {
            QueueState s = attachment.stopQueue(v.index).orElse(null);
            if (s != null) v.base = s.nextAvail();
            return s;
        } catch (DeviceException e) {
            // No stable position (a ring whose worker died of a fault mid-batch; the device now needs a reset). The
            // base this ring started from is stale by all it did since, and the front-end hands what GET_VRING_BASE
            // answers to the next back-end (a migration's destination), which would take those buffers again and
            // complete them twice. The used index in memory is what the driver has back: from there the next
            // back-end takes again only what was in flight (as QEMU does itself when GET_VRING_BASE fails). The
            // session goes on, so the front-end can reset and set up again.
            int used = usedIndexInMemory(v);
            if (used >= 0) v.base = used;
            LOG.info(() -> "vhost-user " + device + ": stopping ring " + v.index + ": " + e.getMessage()
                    + (used >= 0 ? "; its base is now the used index in memory, " + used : "; its used ring cannot be read: its base stays " + v.base));
            return null;
        }
    }

    /** Ring {@code v}'s used index as the driver's memory has it, or -1 if the ring is not placed there. */
    private int usedIndexInMemory(Vring v) {
        if (!v.configured()) return -1;
        try {
            QueueConfig cfg = RingPlacement.of(v, memory);
            return SplitRingResume.fromUsed(v.index, cfg.size(), cfg.descAddr(), cfg.availAddr(), cfg.usedAddr(), memory.guestMemory(),
                    VirtioFeatures.EVENT_IDX.in(virtioFeatures)).nextUsed();
        } catch (VhostUserException | QueueFault e) {
            return -1;
        }
    }

    /**
     * Where a ring handed over by the front-end carries on: from the inflight buffer when the front-end
     * gave one that a back-end wrote before (this process or the one that died), else from its base; and
     * from then on its ring records into that buffer. The one place the buffer is read (see
     * {@link SplitInflightLog#recover}).
     */
    private QueueState resume(Vring v, QueueConfig cfg) throws VhostUserException {
        MemorySegment region = inflight == null ? null : inflight.queue(v.index);
        inflightLogs[v.index] = null;
        if (region == null) {
            attachment.setInflightLog(v.index, null);
            QueueState s = resumeFromBase(v, cfg);
            // The other half of a hand-over's line (GET_VRING_BASE's): a fresh ring at 0 has nothing to say.
            if (s.nextAvail() != 0 || s.nextUsed() != 0)
                LOG.info(() -> "vhost-user " + device + ": ring " + v.index + " carries on from base " + v.base + " (used index "
                        + s.nextUsed() + " in memory, " + s.inFlight().size() + " in flight)");
            return s;
        }
        if (cfg.size() != inflight.queueSize())
            throw VhostUserException.refuse("ring " + v.index + " has " + cfg.size() + " entries, its inflight buffer was made for "
                    + inflight.queueSize());
        try {
            SplitRingResume.Resumed r = SplitRingResume.fromInflight(v.index, cfg.size(), cfg.descAddr(), cfg.availAddr(), cfg.usedAddr(),
                    memory.guestMemory(), v.base, VirtioFeatures.EVENT_IDX.in(virtioFeatures), region);
            if (r.fromInflight() && r.state().nextAvail() != v.base) {
                LOG.info(() -> "vhost-user " + device + ": ring " + v.index + ": the front-end's base is " + v.base + "; its inflight buffer has "
                        + r.state().inFlight().size() + " heads in flight after used index " + r.state().nextUsed()
                        + ": carrying on from " + r.state().nextAvail() + ", the heads in flight first");
            }
            attachment.setInflightLog(v.index, r.log());
            inflightLogs[v.index] = r.log();
            return r.state();
        } catch (QueueFault e) {
            throw VhostUserException.refuse("ring " + v.index + ": " + e.getMessage());
        }
    }

    /** Where a ring handed over at a base carries on, read from the ring in memory (see {@link SplitRingResume}). */
    private QueueState resumeFromBase(Vring v, QueueConfig cfg) throws VhostUserException {
        try {
            return SplitRingResume.fromBase(v.index, cfg.size(), cfg.descAddr(), cfg.availAddr(), cfg.usedAddr(),
                    memory.guestMemory(), v.base, VirtioFeatures.EVENT_IDX.in(virtioFeatures));
        } catch (QueueFault e) {
            throw VhostUserException.refuse("ring " + v.index + ": " + e.getMessage());
        }
    }

    /** Ring {@code v} (null: the rings together) cannot run: the front-end hears it on the error fd. */
    private void ringFailed(Vring v, String why) {
        synchronized (this) { lastError = why; }
        LOG.info(() -> "vhost-user " + device + ": cannot start " + (v == null ? "the rings" : "ring " + v.index) + ": " + why);
        if (v != null) v.signalErr();
        else for (Vring r : rings) r.signalErr();
    }

    /** RESET_OWNER: every ring stops (alone), keeping its position as its base. */
    private void stopAll() {
        for (Vring v : rings) {
            stopRing(v);
            v.started = false;
        }
    }

    private void resetDevice() {
        for (Vring v : rings) v.reset();
        java.util.Arrays.fill(inflightLogs, null);
        live = false;
        attachment.reset();
        featuresSet = false;
        virtioFeatures = 0;
    }

    private void signalErrors(String reason) {
        LOG.info(() -> "vhost-user " + device + ": device needs reset: " + reason);
        for (Vring v : rings) v.signalErr();
    }

    // ---- helpers ----

    private Vring ring(int index) throws VhostUserException {
        if (index < 0 || index >= rings.length)
            throw VhostUserException.refuse("no ring " + index + "; " + device.type() + " has " + rings.length);
        return rings[index];
    }

    private static int vringIndex(Message m) {
        return (int) (((Message.U64) m.body()).value() & Wire.VRING_IDX_MASK);
    }

    private void requireStopped(Vring v, Request r) throws VhostUserException {
        if (live && attachment.isQueueRunning(v.index)) throw VhostUserException.refuse(r + ": ring " + v.index + " is running; stop it with GET_VRING_BASE first");
    }

    private void requireProtocol(ProtocolFeature f, Request r) throws VhostUserException {
        if (!f.in(protocolFeatures)) throw VhostUserException.refuse(r + " without VHOST_USER_PROTOCOL_F_" + f);
    }

    // ---- dirty logging ----

    /**
     * Maps the front-end's log (size bytes at offset of the fd) and, if LOG_ALL is on, logs into it;
     * returns once no mark can land in the previous log any more (see {@link DirtyLogging}).
     */
    private void setLogBase(Message.Log l, OwnedFd fd) throws VhostUserException {
        DirtyLog next;
        Arena arena = Arena.ofShared();
        try {
            FdStat st = MappingRule.SHARED_FILE.check(fd);   // IllegalArgumentException: refused below, saying why
            if (l.size() <= 0 || l.size() % 8 != 0 || l.offset() < 0 || l.size() > st.size() - l.offset())
                throw VhostUserException.refuse("log of " + l.size() + " bytes at offset " + l.offset() + " does not fit its file of " + st.size());
            // One bit per 4 KiB page: a log this large would cover 32768 times the memory a session may map.
            if (l.size() > limits.bytesPerSession())
                throw VhostUserException.refuse("log of " + l.size() + " bytes (limit: VhostUserLimits.bytesPerSession = " + limits.bytesPerSession() + ")");
            // The mapping holds the file by itself: the fd is not kept (the message closes it).
            next = new DirtyLog(Memfd.map(fd, l.offset(), l.size(), MappingRule.SHARED_FILE, arena));
        } catch (VhostUserException | RuntimeException e) {
            arena.close();
            if (e instanceof VhostUserException v) throw v;
            throw VhostUserException.refuse("cannot map the dirty log: log " + e.getMessage());
        }
        // The mapping holds the file by itself (the message closes the fd), so retiring the log unmaps it.
        logging.switchTo(new DirtyLogging.Mapped(next, arena::close));
    }

    /** Takes {@code fd} as an eventfd; a refused fd stays with the message, which closes it. */
    private static EventFd adoptEventFd(OwnedFd fd, String what, int ring) throws VhostUserException {
        try {
            return EventFd.adopt(fd);
        } catch (RuntimeException e) {
            throw VhostUserException.refuse("ring " + ring + " " + what + " fd is not an eventfd: " + e.getMessage());
        }
    }

    private void sendWithFd(ByteBuffer msg, int fd) {
        byte[] b = new byte[msg.remaining()];
        msg.get(b);
        conn.sendAll(b, fd);
    }

    private void send(ByteBuffer msg) {
        byte[] b = new byte[msg.remaining()];
        msg.get(b);
        conn.sendAll(b);
    }

    /** Ends the session: the device is reset and freed for the next front-end; fds and mappings released. */
    @Override
    public void close() {
        synchronized (this) {
            if (closed) return;
            closed = true;
        }
        live = false;
        try {
            attachment.close();   // resets the device (queues stopped) before the memory goes away
        } catch (RuntimeException e) {
            LOG.log(Level.FINE, "detach", e);
        }
        for (Vring v : rings) v.closeFds();
        logging.close();
        memory.close(lingering);   // unmapped now, or when a worker left behind by the reset has left
        if (inflight != null) inflight.close();   // after the device stopped its rings: nothing writes to it now
        mappedBytes = 0;
        if (logEventFd != null) logEventFd.close();
        conn.close();
    }
}
