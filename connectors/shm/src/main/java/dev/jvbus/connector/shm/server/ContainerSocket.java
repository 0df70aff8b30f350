package dev.jvbus.connector.shm.server;

import dev.jvbus.connector.shm.protocol.ErrorCode;
import dev.jvbus.connector.shm.protocol.FrameChannel;
import dev.jvbus.connector.shm.protocol.Message.Reply;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.sys.PeerCredentials;
import dev.jvbus.core.sys.UnixConnection;
import dev.jvbus.core.sys.UnixListener;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * One container's listening socket (mode 0600) and the sessions it accepted. A connecting peer is
 * checked by uid (SO_PEERCRED) before it may send anything; a refused peer gets one DENIED reply
 * (seq 0) saying why, and the connection is closed.
 */
public final class ContainerSocket implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(ContainerSocket.class.getName());
    private static final int BACKLOG = 64;

    private final Container container;
    private final UnixListener listener;
    private final AllowedPeers allowed;
    private final Set<Session> sessions = ConcurrentHashMap.newKeySet();
    private final AtomicInteger accepted = new AtomicInteger();
    private final Thread acceptor;
    private volatile boolean closed;

    private ContainerSocket(Container container, UnixListener listener, AllowedPeers allowed) {
        this.container = container;
        this.listener = listener;
        this.allowed = allowed;
        this.acceptor = Thread.ofPlatform().daemon().name("jvbus-shm-accept-" + container.name()).unstarted(this::acceptLoop);
    }

    static ContainerSocket open(Container container, Path path, AllowedPeers allowed) {
        ContainerSocket s = new ContainerSocket(container, UnixListener.bind(path, BACKLOG), allowed);
        s.acceptor.start();
        return s;
    }

    public Path path() { return listener.path(); }

    public Container container() { return container; }

    public AllowedPeers allowed() { return allowed; }

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
                pause();   // EMFILE and friends: do not spin
                continue;
            }
            if (conn == null) return;   // listener closed
            try {
                admit(conn);
            } catch (RuntimeException e) {
                LOG.log(Level.WARNING, "container '" + container.name() + "': cannot start a session", e);
                conn.close();
            }
        }
    }

    private void admit(UnixConnection conn) {
        PeerCredentials peer = conn.peerCredentials();
        FrameChannel channel = new FrameChannel(conn);
        if (!allowed.permits(peer)) {
            LOG.info(() -> "container '" + container.name() + "': refused pid " + peer.pid() + " uid " + peer.uid());
            try {
                channel.send(Reply.error(ErrorCode.DENIED, "uid " + peer.uid() + " is not allowed to use container '"
                        + container.name() + "'; ask the operator to add it"), 0);
            } catch (RuntimeException gone) {
                // the peer did not wait for the answer
            }
            channel.close();
            return;
        }
        int n = accepted.incrementAndGet();
        String name = "shm " + container.name() + "#" + n;
        Session session = new Session(container, channel, peer, name, sessions::remove);
        sessions.add(session);
        if (closed) {   // raced with close(): do not leave a session behind
            session.shutdown();
        }
        Thread.ofPlatform().daemon().name("jvbus-shm-" + container.name() + "-" + n).start(session);
    }

    private static void pause() {
        try {
            Thread.sleep(50);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Stops accepting and ends every session (their devices are reset and freed). */
    @Override
    public void close() {
        if (closed) return;
        closed = true;
        listener.close();
        for (Session s : List.copyOf(sessions)) s.shutdown();
        try {
            acceptor.join(5_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
