package dev.jvbus.connector.shm.server;

import dev.jvbus.connector.shm.protocol.Codec;
import dev.jvbus.connector.shm.protocol.ErrorCode;
import dev.jvbus.connector.shm.protocol.FrameChannel;
import dev.jvbus.connector.shm.protocol.Message;
import dev.jvbus.connector.shm.protocol.Message.Reply;
import dev.jvbus.connector.shm.protocol.ProtocolException;
import dev.jvbus.connector.shm.protocol.Wire;
import dev.jvbus.core.bus.Attachment;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.ContainerEvent;
import dev.jvbus.core.bus.DevId;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.bus.DeviceBusyException;
import dev.jvbus.core.bus.DeviceException;
import dev.jvbus.core.bus.DeviceObserver;
import dev.jvbus.core.bus.NoSuchDeviceException;
import dev.jvbus.core.bus.Relocation;
import dev.jvbus.core.bus.SessionInfo;
import dev.jvbus.core.bus.Subscription;
import dev.jvbus.core.sys.Errno;
import dev.jvbus.core.sys.EventFd;
import dev.jvbus.core.sys.FdStat;
import dev.jvbus.core.sys.LingeringMappings;
import dev.jvbus.core.sys.MappingRule;
import dev.jvbus.core.sys.Memfd;
import dev.jvbus.core.sys.OwnedFd;
import dev.jvbus.core.sys.OwnedFds;
import dev.jvbus.core.sys.PeerCredentials;
import java.nio.ByteBuffer;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Consumer;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * One client connection, bound for its whole life to one container: every devid it names is looked
 * up through that container, so it cannot reach another container's devices (and cannot tell them
 * from devids that never existed).
 *
 * <p>Threads: the control plane runs one platform thread per session, which reads a frame, answers
 * it and reads the next. Why not an epoll loop: requests are rare and short (setup, not data, which
 * moves on the rings), a blocking loop reads top to bottom, and a slow request on one session
 * cannot delay another. Platform, not virtual, threads: the thread sits in a native recvmsg, which
 * would pin a virtual thread's carrier anyway. Events (hotplug, NEEDS_RESET) are queued by the bus
 * thread that caused them and sent by the session's event thread (see {@link #OUTBOX}), so a client
 * that stops reading blocks nobody but itself; {@link FrameChannel} serialises sends, so frames never
 * interleave. A connection that has not completed HELLO within {@link ShmLimits#helloTimeout()} is
 * dropped; its regions and mapped bytes are bounded by {@link ShmLimits} too.
 *
 * <p>Fds: each frame owns the fds that came with it ({@link OwnedFds}); DEVSHM and SIGNAL take the
 * ones they keep, and the frame closes the rest, once, before the reply goes out. A DEVSHM fd must
 * pass {@link MappingRule#SEALED_MEMFD} (see PROTOCOL.md, DEVSHM rules).
 *
 * <p>Errors: every recoverable error is a REPLY with a code and the session goes on. Only a broken
 * frame (its length cannot be trusted) and a dead peer end the session; ending it closes every
 * device it held (reset, queues stopped), unmaps the memory and closes the fds.
 */
final class Session implements Runnable, DeviceObserver {
    private static final Logger LOG = Logger.getLogger(Session.class.getName());

    private final Container container;
    private final FrameChannel channel;
    private final PeerCredentials peer;
    private final String name;
    private final ShmLimits limits;
    private final Consumer<Session> onEnd;
    private final Instant since = Instant.now();

    // Guarded by this: the session thread changes them per request; bus threads on device removal.
    private final Map<DevId, OpenDevice> open = new TreeMap<>();
    /**
     * Bytes of the client's memory mapped for the devices this session holds, for metrics: added when a
     * region is mapped, taken off when a device's regions are unmapped (on the session's thread, or on an
     * unplugging one: hence atomic; never per frame).
     */
    private final java.util.concurrent.atomic.AtomicLong mapped = new java.util.concurrent.atomic.AtomicLong();
    private boolean greeted;
    private volatile int version;   // agreed in HELLO: the highest both speak
    private String client = "?";
    private Subscription events;
    private boolean ended;

    /**
     * Events (DEVADD, DEVDROP, NEEDS_RESET) are raised on bus threads: the operator's, a device
     * worker's. They never write the socket themselves: a client that stops reading would block
     * them, and with them the whole bus. They go into this bounded outbox, which one sender thread
     * per session drains; a client that lets it fill up is not reading and is disconnected.
     */
    static final int OUTBOX = 16_384;
    private final java.util.concurrent.ArrayBlockingQueue<Message> outbox = new java.util.concurrent.ArrayBlockingQueue<>(OUTBOX);
    private Thread eventSender;
    private volatile boolean overflowed;
    private Thread helloDeadline;

    /** Where a released region a stuck worker still holds is counted (its socket's, for operators). */
    private final LingeringMappings lingering;

    Session(Container container, FrameChannel channel, PeerCredentials peer, String name, ShmLimits limits, LingeringMappings lingering,
            Consumer<Session> onEnd) {
        this.container = container;
        this.lingering = lingering;
        this.channel = channel;
        this.peer = peer;
        this.name = name;
        this.limits = limits;
        this.onEnd = onEnd;
    }

    String name() { return name; }

    PeerCredentials peer() { return peer; }

    /**
     * What listing shows of this session: the peer, since when, and the features in force on each
     * device it has open. The devices are read outside this session's lock: a device tells its holder
     * of an unplug under its own lock, so holding ours while asking a device could deadlock.
     */
    SessionInfo info() {
        List<Attachment> held;
        synchronized (this) {
            held = open.values().stream().map(OpenDevice::attachment).toList();
        }
        Map<DevId, Long> features = new TreeMap<>();
        for (Attachment a : held) features.put(a.devid(), a.negotiatedFeatures());
        return new SessionInfo(peer.pid(), peer.uid(), peer.gid(), since, features);
    }

    @Override
    public void run() {
        try {
            armHelloDeadline();
            serve();
        } catch (RuntimeException e) {
            // The transport failed in a way recv/send do not map to end-of-stream; the session cannot go on.
            LOG.log(Level.WARNING, name + ": connection failed", e);
        } finally {
            end();
        }
    }

    /**
     * Drops the connection if HELLO has not succeeded within {@link ShmLimits#helloTimeout()}: a peer
     * that connects and says nothing would otherwise hold a session slot and its thread for good.
     * A virtual thread: it only sleeps, so it costs no platform thread and no carrier while it waits.
     */
    private void armHelloDeadline() {
        Thread t;
        try {
            t = Thread.ofVirtual().name(name + "-hello-deadline").unstarted(this::enforceHelloDeadline);
            synchronized (this) { helloDeadline = t; }
            t.start();
        } catch (OutOfMemoryError e) {
            // Without the deadline this connection could stall forever: refuse it rather than serve it unguarded.
            LOG.warning(() -> name + ": cannot start the HELLO deadline (" + e.getMessage() + "); dropping the connection");
            shutdown();
        }
    }

    private void enforceHelloDeadline() {
        try {
            Thread.sleep(limits.helloTimeout());
        } catch (InterruptedException greetedOrEnded) {
            return;
        }
        synchronized (this) {
            if (greeted || ended) return;
        }
        String why = "no HELLO within " + limits.helloTimeout().toMillis() + " ms (limit: ShmLimits.helloTimeout); closing the connection";
        LOG.info(() -> name + ": " + why);
        channel.sendNow(Reply.error(ErrorCode.LIMIT, why), 0);   // best effort: never wait on a silent peer
        shutdown();
    }

    private void serve() {
        while (true) {
            switch (channel.read()) {
                case FrameChannel.EndOfStream eos -> {
                    LOG.fine(() -> name + ": client left" + (eos.midFrame() ? " mid-frame" : ""));
                    return;
                }
                case FrameChannel.BrokenFrame broken -> {
                    LOG.info(() -> name + ": " + broken.error().getMessage());
                    send(Reply.error(broken.error().code(), broken.error().getMessage()), broken.seq());
                    return;
                }
                case FrameChannel.Frame frame -> {
                    Reply reply;
                    try (frame) {          // fds nobody took are closed before the reply goes out
                        reply = answer(frame);
                    }
                    if (!send(reply, frame.header().seq())) return;
                }
            }
        }
    }

    /** The reply to one sound frame; never throws. */
    private Reply answer(FrameChannel.Frame frame) {
        try {
            if (frame.fds().overLimit())
                throw new Refusal(ErrorCode.BAD_FDS, "frame of type 0x" + Integer.toHexString(frame.header().typeCode())
                        + " carried more fds than its type allows (limit: " + frame.fds().limit() + " fds for this type, at most "
                        + Wire.MAX_FDS + " per frame); every fd it carried was closed");
            Message m = Codec.decode(frame.header(), frame.body(), frame.fds().count());
            if (!(m instanceof Message.Request request))
                throw new Refusal(ErrorCode.UNKNOWN_TYPE, m.type() + " is sent by the bus, never to it");
            return handle(request, frame.fds());
        } catch (ProtocolException e) {
            return Reply.error(e.code(), e.getMessage());
        } catch (Refusal r) {
            return Reply.error(r.code(), r.getMessage());
        } catch (RuntimeException e) {
            // The last line, not the design: a bug here must not take down the bus or other sessions.
            LOG.log(Level.WARNING, name + ": internal error answering type 0x" + Integer.toHexString(frame.header().typeCode()), e);
            return Reply.error(ErrorCode.INTERNAL, "internal error: " + e);
        }
    }

    private synchronized Reply handle(Message.Request request, OwnedFds fds) throws Refusal, ProtocolException {
        if (ended) throw new Refusal(ErrorCode.INTERNAL, "session is ending");
        if (!greeted && !(request instanceof Message.Hello))
            throw new Refusal(ErrorCode.HELLO_FIRST, "send HELLO first; got " + request.type());
        return switch (request) {
            case Message.Hello h -> hello(h);
            case Message.Enumerate e -> enumerate();
            case Message.DevOpen o -> devOpen(o.devid());
            case Message.DevClose c -> devClose(c.devid());
            case Message.DevCall c -> devCall(c);
            case Message.DevShm s -> devShm(s, fds);
            case Message.Signal s -> signal(s, fds);
        };
    }

    private Reply hello(Message.Hello h) throws Refusal {
        if (greeted) throw new Refusal(ErrorCode.BAD_MESSAGE, "HELLO was already accepted on this connection");
        if (h.minVersion() > h.maxVersion())
            throw new Refusal(ErrorCode.BAD_MESSAGE, "HELLO version range " + h.minVersion() + ".." + h.maxVersion() + " is empty");
        int agreed = Math.min(Wire.VERSION, h.maxVersion());
        if (agreed < Math.max(Wire.MIN_VERSION, h.minVersion()))
            throw new Refusal(ErrorCode.UNSUPPORTED_VERSION, "this bus speaks versions " + Wire.MIN_VERSION + ".." + Wire.VERSION
                    + "; the client offered " + h.minVersion() + ".." + h.maxVersion());
        try {
            // Platform, like the reader: it may sit in a native sendmsg to a slow client, which would pin a carrier.
            eventSender = Thread.ofPlatform().daemon().name(name + "-events").start(this::sendEvents);
        } catch (OutOfMemoryError e) {
            // The JVM cannot create a thread now: refuse this HELLO, the client may try again; nobody else is affected.
            throw new Refusal(ErrorCode.INTERNAL, "the bus cannot start this session's event thread now (" + e.getMessage()
                    + "); try HELLO again later");
        }
        greeted = true;
        version = agreed;
        if (helloDeadline != null) helloDeadline.interrupt();
        client = h.client();
        events = container.subscribe(this::forward);
        LOG.fine(() -> name + ": HELLO from '" + client + "' (pid " + peer.pid() + ", uid " + peer.uid() + ")");
        return Reply.ok(Codec.encodeHelloAccepted(new Message.HelloAccepted(agreed, container.name())));
    }

    private Reply enumerate() {
        List<Message.DeviceEntry> list = new ArrayList<>();
        for (Device d : container.devices()) list.add(new Message.DeviceEntry(d.devid(), d.type()));
        return Reply.ok(Codec.encodeDeviceList(list));
    }

    private Reply devOpen(DevId devid) throws Refusal {
        if (open.containsKey(devid)) throw new Refusal(ErrorCode.BUSY, "device " + devid + " is already open on this connection");
        Device device;
        try {
            device = container.device(devid);
        } catch (NoSuchDeviceException e) {
            throw new Refusal(ErrorCode.NO_SUCH_DEVICE, e.getMessage());
        }
        try {
            Attachment a = device.attach(holder(), this);
            open.put(devid, new OpenDevice(a, mapped, lingering));
            return Reply.ok();
        } catch (DeviceBusyException e) {
            throw new Refusal(ErrorCode.BUSY, e.getMessage());
        } catch (DeviceException removedMeanwhile) {
            // Unplugged between lookup and attach: the same answer as for any devid not here.
            throw new Refusal(ErrorCode.NO_SUCH_DEVICE, new NoSuchDeviceException(container.name(), devid).getMessage());
        }
    }

    private String holder() {
        return "shm client '" + client + "' (pid " + peer.pid() + ", uid " + peer.uid() + ")";
    }

    private Reply devClose(DevId devid) throws Refusal {
        OpenDevice d = requireOpen(devid);
        open.remove(devid);
        d.close();
        return Reply.ok();
    }

    private OpenDevice requireOpen(DevId devid) throws Refusal {
        OpenDevice d = open.get(devid);
        // Same text whether the devid exists elsewhere or not: nothing leaks about other containers.
        if (d == null) throw new Refusal(ErrorCode.NOT_OPEN, "device " + devid + " is not open on this connection; DEVOPEN it first");
        return d;
    }

    private Reply devCall(Message.DevCall call) throws Refusal, ProtocolException {
        OpenDevice d = requireOpen(call.devid());
        BusCalls.Outcome out = BusCalls.call(d.attachment(), call.func(), call.payload());
        // A reset dropped the device's memory table and doorbells: now nothing uses them.
        if (out.reset()) d.releaseDataPath();
        return Reply.ok(out.reply());
    }

    private Reply devShm(Message.DevShm s, OwnedFds fds) throws Refusal {
        OpenDevice d = requireOpen(s.devid());
        OwnedFd fd = fds.get(0);
        FdStat file;
        try {
            file = MappingRule.SEALED_MEMFD.check(fd);
        } catch (IllegalArgumentException e) {
            throw new Refusal(ErrorCode.BAD_FDS, "DEVSHM " + e.getMessage());
        }
        d.checkRegion(s.guestAddress(), s.size(), s.offset(), file);
        checkSessionMemory(s);
        Memfd mapping;
        try {
            mapping = OpenDevice.map(fd, s.offset(), s.size());   // takes the fd on success
        } catch (IllegalArgumentException | Errno.SysException e) {
            throw new Refusal(ErrorCode.BAD_REGION, "DEVSHM on device " + s.devid() + ": cannot map: " + e.getMessage());
        }
        d.addRegion(new SharedRegion(s.guestAddress(), s.size(), s.offset(), mapping));
        return Reply.ok();
    }

    /** The session's share of the bus: regions and mapped bytes over every device it holds ({@link ShmLimits}). */
    private void checkSessionMemory(Message.DevShm s) throws Refusal {
        int regions = 0;
        long bytes = 0;
        for (OpenDevice o : open.values()) {
            regions += o.regionCount();
            bytes += o.mappedBytes();
        }
        if (regions >= limits.regionsPerSession())
            throw new Refusal(ErrorCode.LIMIT, "DEVSHM on device " + s.devid() + ": this session already has " + regions
                    + " regions mapped (limit: ShmLimits.regionsPerSession = " + limits.regionsPerSession() + ")");
        if (s.size() > limits.bytesPerSession() - bytes)
            throw new Refusal(ErrorCode.LIMIT, "DEVSHM on device " + s.devid() + ": " + s.size() + " more bytes would bring this session's"
                    + " shared memory past " + limits.bytesPerSession() + " bytes (limit: ShmLimits.bytesPerSession; "
                    + bytes + " mapped now)");
    }

    private Reply signal(Message.Signal s, OwnedFds fds) throws Refusal {
        OpenDevice d = requireOpen(s.devid());
        for (int i = 0; i < 2; i++) {
            if (!fds.get(i).isEventFd())
                throw new Refusal(ErrorCode.BAD_FDS, "SIGNAL fd " + i + " (" + (i == 0 ? "kick" : "call") + ") is a "
                        + fds.get(i).stat().kind() + ", not an eventfd");
        }
        EventFd kick = EventFd.adopt(fds.get(0));
        EventFd call;
        try {
            call = EventFd.adopt(fds.get(1));
        } catch (RuntimeException e) {
            kick.close();
            throw e;
        }
        d.setDoorbells(s.queue(), kick, call);
        return Reply.ok();
    }

    // ---- events: bus threads ----

    private void forward(ContainerEvent e) {
        switch (e) {
            case ContainerEvent.DeviceAdded a -> post(new Message.DevAdd(a.devid(), a.type()));
            case ContainerEvent.DeviceRemoved r -> post(new Message.DevDrop(r.devid()));
            case ContainerEvent.DeviceNeedsReset n -> { } // sent by needsReset() below, to the holder only
            case ContainerEvent.ContainerDestroyed d -> shutdown();
        }
    }

    @Override
    public void needsReset(DevId devid, String reason) {
        post(new Message.NeedsReset(devid, reason));
    }

    /**
     * CONFIG_CHANGED, to the holder only (this observer is the holder's), and only to a client that speaks
     * version 3: an older client would end on a type it does not know, and it reads the config when it wants.
     */
    @Override
    public void configChanged(DevId devid) {
        if (version >= 3) post(new Message.ConfigChanged(devid));
    }

    /** MOVED, to the holder only, and only to a client that speaks version 2 (a version 1 client would end on it). */
    @Override
    public boolean moved(DevId devid, Relocation to) {
        if (version < 2) return false;
        post(new Message.Moved(devid, to.bus(), to.container(), to.devid(), to.endpoint()));
        return true;
    }

    /** Queues an event for the sender thread; never blocks the bus thread that raised it. */
    private void post(Message event) {
        if (outbox.offer(event) || overflowed) return;
        overflowed = true;
        LOG.warning(() -> name + ": client '" + client + "' has not read its last " + OUTBOX + " events; disconnecting it");
        shutdown();
    }

    /**
     * The session's event sender: the only thread that may block on a slow client's socket for events.
     *
     * <p>It sends everything that has queued since its last write in one write (up to {@link #BATCH}
     * events). Why: one sendmsg per event (and one wakeup of the client per event) made this thread
     * slower than an operator adding and removing devices in a loop; the outbox then filled on our
     * side while the client's socket was nearly empty, and a client that read everything it was sent
     * was disconnected for our lag. Writing the backlog at once makes the cost per event fall as the
     * backlog grows, so a full outbox means the client is not reading.
     */
    private void sendEvents() {
        List<Message> batch = new ArrayList<>(BATCH);
        try {
            while (true) {
                batch.add(outbox.take());
                outbox.drainTo(batch, BATCH - 1);
                int close = -1;
                for (int i = 0; i < batch.size() && close < 0; i++) if (batch.get(i) == CLOSE_AFTER_EVENTS) close = i;
                if (close >= 0) {   // the bus is closing this session: what was queued before goes out first
                    if (close > 0) sendEvents(batch.subList(0, close));
                    channel.close();
                    return;
                }
                if (!sendEvents(batch)) return;
                batch.clear();
            }
        } catch (InterruptedException e) {
            // the session ended
        }
    }

    /**
     * Queued by {@link #shutdown()} behind the events already posted (compared by identity, never sent): the
     * last events of a closing container (each device's DEVDROP) reach the client before its connection ends.
     */
    private static final Message CLOSE_AFTER_EVENTS = new Message.Reply(0, new byte[0]);
    /** How long a closing session waits for its event sender to flush before it closes anyway (a client that does not read). */
    static final java.time.Duration FLUSH_BOUND = java.time.Duration.ofSeconds(2);

    /** Most events in one write: a few KiB of frames, one sendmsg. */
    static final int BATCH = 256;

    /** The frames of {@code events} (seq 0) back to back, in one write; false if the peer is gone. */
    private boolean sendEvents(List<Message> events) {
        if (events.size() == 1) return send(events.getFirst(), 0);
        java.io.ByteArrayOutputStream frames = new java.io.ByteArrayOutputStream(events.size() * 32);
        for (Message m : events) {
            ByteBuffer f = Codec.encode(m, 0);
            frames.write(f.array(), f.arrayOffset() + f.position(), f.remaining());
        }
        try {
            channel.sendFrame(frames.toByteArray());
            return true;
        } catch (Errno.SysException | IllegalStateException gone) {
            LOG.fine(() -> name + ": cannot send " + events.size() + " events: " + gone.getMessage());
            return false;
        }
    }

    @Override
    public void removed(DevId devid) {
        // Unplugged under us: the device is already reset and the attachment closed; free what we held.
        synchronized (this) {
            OpenDevice d = open.remove(devid);
            if (d != null) d.releaseDataPath();
        }
    }

    /** Sends one frame; false if the peer is gone (the reader will see the end and clean up). */
    private boolean send(Message m, int seq) {
        try {
            channel.send(m, seq);
            return true;
        } catch (Errno.SysException | IllegalStateException gone) {
            LOG.fine(() -> name + ": cannot send " + m.type() + ": " + gone.getMessage());
            return false;
        }
    }

    /** Bytes of the client's memory mapped for this session's devices now. */
    long mappedBytes() {
        return mapped.get();
    }

    /**
     * Closes the connection from the bus side; the session thread then ends and releases everything. Events
     * already queued are sent first (the sender closes after them); if they cannot be queued or the client does
     * not read them within {@link #FLUSH_BOUND}, the connection closes anyway.
     */
    void shutdown() {
        Thread sender = eventSender;
        if (sender == null || !sender.isAlive() || overflowed || !outbox.offer(CLOSE_AFTER_EVENTS)) {
            channel.close();
            return;
        }
        Thread.ofVirtual().name(name + "-close-bound").start(() -> {
            try {
                sender.join(FLUSH_BOUND);
            } catch (InterruptedException e) {
                // close now
            }
            channel.close();   // idempotent: the sender closed it already unless the client would not read
        });
    }

    /** Releases everything the client held: devices reset and freed, memory unmapped, fds closed. */
    private void end() {
        List<OpenDevice> held;
        synchronized (this) {
            if (ended) return;
            ended = true;
            held = new ArrayList<>(open.values());
            open.clear();
            if (events != null) events.close();
            if (helloDeadline != null) helloDeadline.interrupt();
        }
        if (eventSender != null) eventSender.interrupt();
        for (OpenDevice d : held) {
            try {
                d.close();
            } catch (RuntimeException e) {
                LOG.log(Level.WARNING, name + ": releasing device " + d.devid() + " failed", e);
            }
        }
        channel.close();
        LOG.fine(() -> name + ": ended, released " + held.size() + " device(s)");
        onEnd.accept(this);
    }

    synchronized int openCount() { return open.size(); }
}
