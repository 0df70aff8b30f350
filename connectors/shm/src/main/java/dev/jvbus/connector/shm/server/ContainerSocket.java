package dev.jvbus.connector.shm.server;

import dev.jvbus.connector.shm.protocol.ErrorCode;
import dev.jvbus.connector.shm.protocol.FrameChannel;
import dev.jvbus.connector.shm.protocol.Message.Reply;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.DevId;
import dev.jvbus.core.bus.Exposure;
import dev.jvbus.core.bus.ExposureInfo;
import dev.jvbus.core.bus.ExposureState;
import dev.jvbus.core.bus.SessionInfo;
import dev.jvbus.core.bus.SessionRefusal;
import dev.jvbus.core.sys.LingeringMappings;
import dev.jvbus.core.sys.PeerCredentials;
import dev.jvbus.core.sys.UnixConnection;
import dev.jvbus.core.sys.UnixListener;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * One container's listening socket (mode 0600) and the sessions it accepted: the shm connector's
 * {@link Exposure} of a container, listed in the container's {@link dev.jvbus.core.bus.Exposures}. It is
 * LISTENING with no session, CONNECTED with one or more, and CLOSED for good once closed (by the
 * operator, or because its container was destroyed); closing it removes the socket file. A connecting peer is
 * checked by uid (SO_PEERCRED) before it may send anything; a refused peer gets one DENIED reply
 * (seq 0) saying why, and the connection is closed. So does (with LIMIT) a peer that would exceed
 * {@link ShmLimits#sessionsPerSocket()}, and (with INTERNAL) one the JVM cannot start a thread for;
 * the acceptor itself never stops for either, nor waits on a peer: refusals go out with
 * {@link FrameChannel#sendNow}.
 */
public final class ContainerSocket implements Exposure {
    /** The kind every shm exposure lists. */
    public static final String KIND = "shm";

    private static final Logger LOG = Logger.getLogger(ContainerSocket.class.getName());
    private static final int BACKLOG = 64;

    private final String id;
    private final Container container;
    private final UnixListener listener;
    private final AllowedPeers allowed;
    private final ShmLimits limits;
    private final ThreadFactory sessionThreads;
    private final Set<Session> sessions = ConcurrentHashMap.newKeySet();
    private final AtomicInteger accepted = new AtomicInteger();
    /** Peers turned away, by {@link SessionRefusal}: written by the acceptor thread only, read racily. */
    private final long[] refused = new long[SessionRefusal.values().length];
    private final Thread acceptor;
    private volatile boolean closed;
    /** Client memory its sessions let go that a worker left behind still holds (see {@link LingeringMappings}). */
    private final LingeringMappings lingering = new LingeringMappings();

    private ContainerSocket(String id, Container container, UnixListener listener, AllowedPeers allowed, ShmLimits limits,
                            ThreadFactory sessionThreads) {
        this.id = id;
        this.container = container;
        this.listener = listener;
        this.allowed = allowed;
        this.limits = limits;
        this.sessionThreads = sessionThreads;
        this.acceptor = Thread.ofPlatform().daemon().name("jvbus-shm-accept-" + container.name()).unstarted(this::acceptLoop);
    }

    static ContainerSocket open(String id, Container container, Path path, AllowedPeers allowed, ShmLimits limits,
                                ThreadFactory sessionThreads) {
        ContainerSocket s = new ContainerSocket(id, container, UnixListener.bind(path, BACKLOG), allowed, limits, sessionThreads);
        s.acceptor.start();
        return s;
    }

    @Override
    public String id() { return id; }

    public Path path() { return listener.path(); }

    /** The container's name (see {@link #exposed()} for the container itself). */
    @Override
    public String container() { return container.name(); }

    /** The container this socket exposes. */
    public Container exposed() { return container; }

    /** The shm connector exposes whole containers: never one device. */
    @Override
    public Optional<DevId> devid() { return Optional.empty(); }

    @Override
    public ExposureInfo info() {
        List<SessionInfo> live = sessions.stream().map(Session::info)
                .sorted(Comparator.comparing(SessionInfo::since)).toList();
        ExposureState state = closed ? ExposureState.CLOSED
                : live.isEmpty() ? ExposureState.LISTENING : ExposureState.CONNECTED;
        return new ExposureInfo(id, KIND, container.name(), Optional.empty(), path(), state, closed ? List.of() : live);
    }

    public AllowedPeers allowed() { return allowed; }

    public ShmLimits limits() { return limits; }

    @Override
    public long refused(SessionRefusal reason) { return refused[reason.ordinal()]; }

    /** Bytes of client memory the live sessions have mapped (DEVSHM regions of the devices they hold). */
    @Override
    public long mappedBytes() {
        long sum = 0;
        for (Session s : sessions) sum += s.mappedBytes();
        return sum;
    }

    /**
     * Bytes of client memory its sessions let go (a device reset, closed or unplugged, a client gone) that stay mapped
     * because a worker that may touch them did not stop within its bound and has not left yet.
     */
    @Override
    public long mappedForStuckWorkers() {
        return lingering.bytes();
    }

    /** Sessions currently connected. */
    public int sessionCount() { return sessions.size(); }

    private void acceptLoop() {
        while (!closed) {
            UnixConnection conn;
            try {
                conn = listener.accept();
            } catch (RuntimeException e) {
                if (closed) return;
                LOG.log(Level.WARNING, "container '" + container.name() + "': accept failed", e);
                UnixListener.pauseAfterFailedAccept();   // EMFILE and friends: do not spin
                continue;
            }
            if (conn == null) return;   // listener closed
            try {
                admit(conn);
            } catch (RuntimeException | OutOfMemoryError e) {
                LOG.log(Level.WARNING, "container '" + container.name() + "': cannot start a session", e);
                refused[SessionRefusal.RESOURCES.ordinal()]++;
                conn.close();
            }
        }
    }

    private void admit(UnixConnection conn) {
        PeerCredentials peer = conn.peerCredentials();
        FrameChannel channel = new FrameChannel(conn);
        if (!allowed.permits(peer)) {
            LOG.info(() -> "container '" + container.name() + "': refused pid " + peer.pid() + " uid " + peer.uid());
            refuse(channel, SessionRefusal.NOT_ALLOWED, ErrorCode.DENIED, "uid " + peer.uid() + " is not allowed to use container '"
                    + container.name() + "'; ask the operator to add it");
            return;
        }
        // Only this thread adds sessions, so the count cannot grow between the check and the add.
        if (sessions.size() >= limits.sessionsPerSocket()) {
            String why = "container '" + container.name() + "' already serves " + sessions.size()
                    + " connections (limit: ShmLimits.sessionsPerSocket = " + limits.sessionsPerSocket() + "); try again later";
            LOG.warning(() -> "refused pid " + peer.pid() + " uid " + peer.uid() + ": " + why);
            refuse(channel, SessionRefusal.LIMIT, ErrorCode.LIMIT, why);
            return;
        }
        int n = accepted.incrementAndGet();
        String name = "shm " + container.name() + "#" + n;
        Session session = new Session(container, channel, peer, name, limits, lingering, this::ended);
        sessions.add(session);
        // Before its thread starts: the session's end (on that thread) is told after its start.
        container.exposures().sessionOpened(this, session.info());
        if (closed) {   // raced with close(): do not leave a session behind
            session.shutdown();
        }
        try {
            Thread t = sessionThreads.newThread(session);
            t.setName("jvbus-shm-" + container.name() + "-" + n);
            t.start();
        } catch (OutOfMemoryError e) {
            // "unable to create native thread": this connection is refused; the acceptor and every other session go on.
            ended(session);
            String why = "the bus cannot start a thread for this connection now (" + e.getMessage() + "); try again later";
            LOG.warning(() -> name + ": " + why);
            refuse(channel, SessionRefusal.RESOURCES, ErrorCode.INTERNAL, why);
        }
    }

    /** A session ended (its devices released): it leaves the list, and the container's observers hear of it once. */
    private void ended(Session s) {
        if (sessions.remove(s)) container.exposures().sessionClosed(this, s.info());
    }

    /** One REPLY with seq 0, sent only if it can go at once, then the connection is closed. */
    private void refuse(FrameChannel channel, SessionRefusal reason, ErrorCode code, String why) {
        refused[reason.ordinal()]++;
        channel.sendNow(Reply.error(code, why), 0);
        channel.close();
    }

    /**
     * Stops accepting, removes the socket file and ends every session (each peer sees its connection
     * end; their devices are reset and freed); the container no longer lists it.
     */
    @Override
    public void close() {
        synchronized (this) {
            if (closed) return;
            closed = true;
        }
        container.exposures().forget(this);
        listener.close();
        for (Session s : List.copyOf(sessions)) s.shutdown();
        try {
            acceptor.join(5_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
