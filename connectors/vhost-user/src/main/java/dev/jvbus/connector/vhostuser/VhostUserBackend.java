package dev.jvbus.connector.vhostuser;

import dev.jvbus.core.bus.BusException;
import dev.jvbus.core.bus.DevId;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.bus.DeviceException;
import dev.jvbus.core.bus.Exposure;
import dev.jvbus.core.bus.ExposureInfo;
import dev.jvbus.core.bus.ExposureState;
import dev.jvbus.core.bus.SessionInfo;
import dev.jvbus.core.bus.SessionRefusal;
import dev.jvbus.core.sys.Errno;
import dev.jvbus.core.sys.LingeringMappings;
import dev.jvbus.core.sys.PeerCredentials;
import dev.jvbus.core.sys.UnixConnection;
import dev.jvbus.core.sys.UnixListener;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Serves one device over one vhost-user socket. Server mode (we listen, 0600; QEMU
 * {@code -chardev socket,path=...}) or client mode (the front-end listens, as with QEMU
 * {@code server=on} for reconnect-friendly setups; we retry until it is there). One front-end at
 * a time: when it goes away the device is reset and the next connection sets it up again.
 *
 * <p>Server mode: one acceptor thread, and one thread per session. While a front-end drives the
 * device, another connection is refused at once (closed, the reason logged and kept in
 * {@link #lastRefusal()}) rather than left waiting in the listen queue. If the JVM cannot create a
 * session thread ({@link OutOfMemoryError} "unable to create native thread"), that connection is
 * refused and the acceptor goes on. Each session keeps to the operator's {@link VhostUserLimits}.
 *
 * <p>Each back-end is an {@link Exposure} of its device, listed in its container's
 * {@link dev.jvbus.core.bus.Exposures} as {@code vhost-user-server} or {@code vhost-user-client}: LISTENING
 * (server, nobody connected) or RECONNECTING (client, the front-end is absent), CONNECTED while a
 * front-end drives the device, CLOSED once closed. The bus closes it when the device is removed or its
 * container destroyed. Closing it hangs up on the front-end (the device is reset) and, in server mode,
 * removes the socket file; in client mode the socket is the front-end's and stays.
 */
public final class VhostUserBackend implements Exposure {
    private static final Logger LOG = Logger.getLogger(VhostUserBackend.class.getName());
    /** How long a new front-end waits for the previous session to finish releasing the device. */
    private static final long HANDOVER_MILLIS = 5_000;

    public enum Mode {
        /** We listen; the front-end connects. */
        SERVER("vhost-user-server"),
        /** The front-end listens; we connect, and again after every disconnect. */
        CLIENT("vhost-user-client");

        private final String kind;

        Mode(String kind) { this.kind = kind; }

        /** The {@link ExposureInfo#kind()} a back-end in this mode lists. */
        public String kind() { return kind; }
    }

    /** Who drives the device now: the front-end's credentials (SO_PEERCRED) and since when. */
    private record FrontEndPeer(PeerCredentials credentials, Instant since) { }

    private final String id;
    private final Device device;
    /** Front-end memory its sessions let go that a worker left behind still holds: kept mapped, shown to operators. */
    private final LingeringMappings lingering = new LingeringMappings();
    private final Path socket;
    private final Mode mode;
    private final VhostUserLimits limits;
    private final ThreadFactory sessionThreads;
    private final UnixListener listener;
    private final Thread thread;
    private volatile boolean closed;
    private volatile VhostUserSession session;
    private volatile FrontEndPeer sessionPeer;   // set before session, so whoever sees the session sees its peer
    private volatile Thread sessionThread;
    private volatile int sessions;
    private volatile String lastRefusal;
    /** Front-ends turned away, by {@link SessionRefusal}: written by the one accept (or connect) thread, read racily. */
    private final long[] refused = new long[SessionRefusal.values().length];

    private VhostUserBackend(String id, Device device, Path socket, Mode mode, VhostUserLimits limits, ThreadFactory sessionThreads) {
        this.id = id;
        this.device = device;
        this.socket = socket;
        this.mode = mode;
        this.limits = Objects.requireNonNull(limits, "limits");
        this.sessionThreads = sessionThreads;
        this.listener = mode == Mode.SERVER ? bindOverStale(socket) : null;
        this.thread = Thread.ofPlatform().name("vhost-user " + socket.getFileName()).daemon().unstarted(this::run);
    }

    /**
     * Binds {@code socket}; a socket file a dead bus left there (nobody accepts on it: connecting is
     * refused) is removed first, so a bus started again after a crash listens where its front-ends
     * (QEMU with {@code reconnect}) look for it. A live one (a connection is accepted) is left alone and the
     * bind fails; so does anything that is not a socket.
     */
    private static UnixListener bindOverStale(Path socket) {
        try {
            return UnixListener.bind(socket, 4);
        } catch (Errno.SysException e) {
            if (!isStaleSocket(socket)) throw e;
            LOG.info(() -> "vhost-user: " + socket + " is the socket of a back-end that is gone; replacing it");
            try {
                java.nio.file.Files.deleteIfExists(socket);
            } catch (java.io.IOException io) {
                throw new IllegalStateException("cannot remove the stale socket " + socket + ": " + io.getMessage(), io);
            }
            return UnixListener.bind(socket, 4);
        }
    }

    private static boolean isStaleSocket(Path socket) {
        try {
            if (dev.jvbus.core.sys.FdStat.ofPath(socket).kind() != dev.jvbus.core.sys.FdStat.Kind.SOCKET) return false;
        } catch (RuntimeException notThere) {
            return false;
        }
        try (UnixConnection c = UnixConnection.connect(socket)) {
            return false;   // someone serves there
        } catch (Errno.SysException e) {
            return e.errno() == Errno.ECONNREFUSED;
        }
    }

    /** Listens on {@code socket} (created 0600) and serves {@code device} to whoever connects, with the default limits. */
    public static VhostUserBackend serve(Device device, Path socket) {
        return serve(device, socket, VhostUserLimits.DEFAULTS);
    }

    /** Listens on {@code socket} (created 0600) and serves {@code device} to whoever connects, within {@code limits}. */
    public static VhostUserBackend serve(Device device, Path socket, VhostUserLimits limits) {
        return serve(device, socket, limits, Thread.ofPlatform().daemon().factory());
    }

    /** Tests: {@code sessionThreads} makes the thread of each session. */
    static VhostUserBackend serve(Device device, Path socket, VhostUserLimits limits, ThreadFactory sessionThreads) {
        return open(device, socket, Mode.SERVER, limits, sessionThreads);
    }

    /** Connects to a front-end listening on {@code socket}, again after every disconnect, with the default limits. */
    public static VhostUserBackend connect(Device device, Path socket) {
        return connect(device, socket, VhostUserLimits.DEFAULTS);
    }

    /** Connects to a front-end listening on {@code socket}, again after every disconnect, within {@code limits}. */
    public static VhostUserBackend connect(Device device, Path socket, VhostUserLimits limits) {
        return open(device, socket, Mode.CLIENT, limits, null);
    }

    /**
     * Opens the back-end as an exposure of {@code device} in its container's exposures.
     *
     * @throws BusException if the device was removed or its container destroyed
     */
    private static VhostUserBackend open(Device device, Path socket, Mode mode, VhostUserLimits limits, ThreadFactory sessionThreads) {
        VhostUserBackend b = device.exposures().expose(mode.kind(), id -> {
            VhostUserBackend n = new VhostUserBackend(id, device, socket, mode, limits, sessionThreads);
            n.thread.start();
            return n;
        });
        // Removed before it was listed: the container's sweep of the device's exposures may have missed it.
        if (device.isRemoved()) {
            b.close();
            throw new BusException(device + " was removed; it cannot be exposed");
        }
        return b;
    }

    @Override
    public String id() { return id; }

    @Override
    public String container() { return device.container(); }

    @Override
    public Optional<DevId> devid() { return Optional.of(device.devid()); }

    public Mode mode() { return mode; }

    /**
     * LISTENING or RECONNECTING (by mode) until a front-end has a session, CONNECTED while it drives the
     * device (its one session: the peer's pid/uid, since when, the device's negotiated features), CLOSED at the end.
     */
    @Override
    public ExposureInfo info() {
        VhostUserSession s = session;
        FrontEndPeer p = sessionPeer;
        boolean live = !closed && s != null && !s.frontEndGone() && p != null;
        ExposureState state = closed ? ExposureState.CLOSED
                : live ? ExposureState.CONNECTED
                : mode == Mode.SERVER ? ExposureState.LISTENING : ExposureState.RECONNECTING;
        List<SessionInfo> current = live ? List.of(sessionInfo(p)) : List.of();
        return new ExposureInfo(id, mode.kind(), device.container(), devid(), socket, state, current);
    }

    /** A front-end's session as listing shows it: the kernel's word on the peer, and the device's features in force. */
    private SessionInfo sessionInfo(FrontEndPeer p) {
        return new SessionInfo(p.credentials().pid(), p.credentials().uid(), p.credentials().gid(), p.since(),
                Map.of(device.devid(), device.features().negotiated()));
    }

    public Path socket() { return socket; }

    public Device device() { return device; }

    public VhostUserLimits limits() { return limits; }

    /** The current session, if a front-end is connected. */
    public VhostUserSession session() { return session; }

    /** How many front-end sessions have started (for tests of reconnects). */
    public int sessionsStarted() { return sessions; }

    @Override
    public long refused(SessionRefusal reason) { return refused[reason.ordinal()]; }

    /** Bytes of the front-end's memory the current session has mapped (0 without a session). */
    @Override
    public long mappedBytes() {
        VhostUserSession s = session;
        return s == null ? 0 : s.mappedBytes();
    }

    /** Bytes of front-end memory its sessions let go that a worker left behind still holds (see {@link LingeringMappings}). */
    @Override
    public long mappedForStuckWorkers() {
        return lingering.bytes();
    }

    /** Why the last connection was refused before it got a session (operators and tests), or null. */
    public String lastRefusal() { return lastRefusal; }

    private void run() {
        if (mode == Mode.SERVER) acceptLoop();
        else connectLoop();
    }

    private void acceptLoop() {
        while (!closed) {
            UnixConnection conn;
            try {
                conn = listener.accept();
            } catch (RuntimeException e) {
                if (closed) return;
                LOG.log(Level.WARNING, "vhost-user " + socket + ": accept failed", e);
                UnixListener.pauseAfterFailedAccept();   // EMFILE and friends: do not spin, do not give up
                continue;
            }
            if (conn == null) {
                if (closed) return;
                continue;
            }
            try {
                admit(conn);
            } catch (RuntimeException | OutOfMemoryError e) {
                refuse(conn, SessionRefusal.RESOURCES, "cannot start a session: " + e);
            }
        }
    }

    private void admit(UnixConnection conn) {
        String peer = describe(conn);
        VhostUserSession current = session;
        // A front-end that hung up is not "another front-end": its session just has not read the end yet.
        if (current != null && !current.frontEndGone()) {
            // vhost-user has one front-end per device: a second one would fight the first over rings and memory.
            refuse(conn, SessionRefusal.BUSY, peer + " refused: " + device + " is driven by another front-end (one front-end at a time per device)");
            return;
        }
        awaitPreviousSession();
        VhostUserSession s;
        try {
            s = new VhostUserSession(conn, device, peer, limits, lingering);
        } catch (DeviceException e) {
            refuse(conn, SessionRefusal.DEVICE, peer + " refused: " + e.getMessage());
            return;
        }
        Thread t;
        FrontEndPeer peerNow = peerOf(conn);
        try {
            t = sessionThreads.newThread(() -> {
                // Told on the session's own thread, so "opened" always comes before "closed".
                device.exposures().sessionOpened(this, sessionInfo(peerNow));
                try {
                    s.serve();   // returns when the front-end goes away; the device is reset by then
                } finally {
                    if (session == s) session = null;
                    device.exposures().sessionClosed(this, sessionInfo(peerNow));
                }
            });
            t.setName("vhost-user " + socket.getFileName() + " session " + (sessions + 1));
            sessionPeer = peerNow;
            session = s;
            sessionThread = t;
            // Counted before the thread runs: whoever sees what the session did (a live device) sees it counted.
            sessions++;
            t.start();
        } catch (OutOfMemoryError e) {
            // "unable to create native thread": this front-end is refused; the acceptor and every other device go on.
            if (session == s) sessions--;
            session = null;
            String why = peer + " refused: cannot start a session thread now (" + e.getMessage() + ")";
            lastRefusal = why;   // before the front-end can see its connection close
            s.close();
            refuse(conn, SessionRefusal.RESOURCES, why);
            return;
        }
    }

    /** The previous front-end is gone, but its session thread may still be releasing the device, fds and mappings. */
    private void awaitPreviousSession() {
        Thread previous = sessionThread;
        if (previous == null) return;
        try {
            if (!previous.join(java.time.Duration.ofMillis(HANDOVER_MILLIS)))
                LOG.warning(() -> "vhost-user " + socket + ": the previous session is still releasing after " + HANDOVER_MILLIS + " ms");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void refuse(UnixConnection conn, SessionRefusal reason, String why) {
        refused[reason.ordinal()]++;
        lastRefusal = why;
        LOG.warning(() -> "vhost-user " + socket + ": " + why);
        conn.close();
    }

    private void connectLoop() {
        while (!closed) {
            UnixConnection conn = connectWithRetry();
            if (conn == null) return;
            VhostUserSession s;
            try {
                s = new VhostUserSession(conn, device, describe(conn), limits, lingering);
            } catch (DeviceException e) {
                refuse(conn, SessionRefusal.DEVICE, e.getMessage() + "; closing the new connection");
                continue;
            }
            FrontEndPeer peerNow = peerOf(conn);
            sessionPeer = peerNow;
            session = s;
            sessions++;
            device.exposures().sessionOpened(this, sessionInfo(peerNow));
            try {
                s.serve();     // returns when the front-end goes away; the device is reset by then
            } finally {
                session = null;
                device.exposures().sessionClosed(this, sessionInfo(peerNow));
            }
        }
    }

    /** The kernel's word on who is at the other end; in client mode, the front-end that listens. */
    private static FrontEndPeer peerOf(UnixConnection conn) {
        PeerCredentials c;
        try {
            c = conn.peerCredentials();
        } catch (RuntimeException e) {
            c = new PeerCredentials(-1, -1, -1);   // the socket is already gone: the session ends at once anyway
        }
        return new FrontEndPeer(c, Instant.now());
    }

    private String describe(UnixConnection conn) {
        try {
            return "vhost-user pid " + conn.peerCredentials().pid();
        } catch (RuntimeException e) {
            return "vhost-user " + socket;
        }
    }

    private UnixConnection connectWithRetry() {
        while (!closed) {
            try {
                return UnixConnection.connect(socket);
            } catch (Errno.SysException e) {
                try {
                    TimeUnit.MILLISECONDS.sleep(100);
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    return null;
                }
            }
        }
        return null;
    }

    /**
     * Hangs up on the front-end (the device is reset), stops listening or reconnecting, removes the
     * socket file in server mode, and leaves the container's exposures. Idempotent.
     */
    @Override
    public void close() {
        synchronized (this) {
            if (closed) return;
            closed = true;
        }
        device.exposures().forget(this);
        VhostUserSession s = session;
        if (s != null) s.close();
        if (listener != null) listener.close();
        try {
            thread.join(5000);
            Thread t = sessionThread;
            if (t != null) t.join(5000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
