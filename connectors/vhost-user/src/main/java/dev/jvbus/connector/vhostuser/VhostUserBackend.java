package dev.jvbus.connector.vhostuser;

import dev.jvbus.core.bus.Device;
import dev.jvbus.core.bus.DeviceException;
import dev.jvbus.core.sys.Errno;
import dev.jvbus.core.sys.UnixConnection;
import dev.jvbus.core.sys.UnixListener;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Serves one device over one vhost-user socket. Server mode (we listen, 0600; QEMU
 * {@code -chardev socket,path=...}) or client mode (the front-end listens, as with QEMU
 * {@code server=on} for reconnect-friendly setups; we retry until it is there). One front-end at
 * a time: when it goes away the device is reset and the next connection sets it up again.
 */
public final class VhostUserBackend implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(VhostUserBackend.class.getName());

    public enum Mode { SERVER, CLIENT }

    private final Device device;
    private final Path socket;
    private final Mode mode;
    private final UnixListener listener;
    private final Thread thread;
    private volatile boolean closed;
    private volatile VhostUserSession session;
    private volatile int sessions;

    private VhostUserBackend(Device device, Path socket, Mode mode) {
        this.device = device;
        this.socket = socket;
        this.mode = mode;
        this.listener = mode == Mode.SERVER ? UnixListener.bind(socket, 4) : null;
        this.thread = Thread.ofPlatform().name("vhost-user " + socket.getFileName()).daemon().unstarted(this::run);
    }

    /** Listens on {@code socket} (created 0600) and serves {@code device} to whoever connects. */
    public static VhostUserBackend serve(Device device, Path socket) {
        VhostUserBackend b = new VhostUserBackend(device, socket, Mode.SERVER);
        b.thread.start();
        return b;
    }

    /** Connects to a front-end listening on {@code socket}, again after every disconnect. */
    public static VhostUserBackend connect(Device device, Path socket) {
        VhostUserBackend b = new VhostUserBackend(device, socket, Mode.CLIENT);
        b.thread.start();
        return b;
    }

    public Path socket() { return socket; }

    public Device device() { return device; }

    /** The current session, if a front-end is connected. */
    public VhostUserSession session() { return session; }

    /** How many front-end sessions have started (for tests of reconnects). */
    public int sessionsStarted() { return sessions; }

    private void run() {
        while (!closed) {
            UnixConnection conn;
            try {
                conn = mode == Mode.SERVER ? listener.accept() : connectWithRetry();
            } catch (RuntimeException e) {
                if (!closed) LOG.log(Level.WARNING, "vhost-user " + socket + ": accept failed", e);
                return;
            }
            if (conn == null) {
                if (closed) return;
                continue;
            }
            String peer;
            try {
                peer = "vhost-user pid " + conn.peerCredentials().pid();
            } catch (RuntimeException e) {
                peer = "vhost-user " + socket;
            }
            try {
                session = new VhostUserSession(conn, device, peer);
            } catch (DeviceException e) {
                LOG.warning(() -> "vhost-user " + socket + ": " + e.getMessage() + "; closing the new connection");
                conn.close();
                continue;
            }
            sessions++;
            session.serve();     // returns when the front-end goes away; the device is reset by then
            session = null;
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

    @Override
    public void close() {
        closed = true;
        VhostUserSession s = session;
        if (s != null) s.close();
        if (listener != null) listener.close();
        try {
            thread.join(5000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
