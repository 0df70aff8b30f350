package dev.jvbus.connector.shm.client;

import dev.jvbus.connector.shm.protocol.Message;
import dev.jvbus.core.bus.DevId;
import java.nio.file.Path;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * A device this client holds on a connection of its own and follows when the bus moves it to another
 * bus (a migration: PROTOCOL.md, "Following a moved device"). The rings, the memory and the doorbells
 * stay the caller's throughout, and the threads that use them carry on: a move only changes which bus
 * reads them.
 *
 * <p>A move, as the client sees it:
 * <ol>
 *   <li>{@code MOVED} arrives from the bus that has the device now (the source). The device is paused
 *       there and restored, paused, on the target. This client connects to the socket MOVED names, opens
 *       the device there and shares the same memory and doorbells ({@link ClientDevice#reopenOn}). The
 *       source connection stays open: if the move fails, the device resumes there.</li>
 *   <li>The move ends with {@code DEVDROP} of the device on the source (it released the device once the
 *       target runs it): the target's handle becomes the device, the source connection is closed.</li>
 *   <li>Or it is given up: the target drops the device (the source undid the move), its connection ends,
 *       or this client cannot reach it. The target connection is closed and the device carries on at
 *       the source, which resumes it.</li>
 * </ol>
 * Events come on the connections' reader threads, where no request may be made; so following runs on a
 * thread of its own and closing a connection never happens on its own reader.
 */
public final class MovableDevice implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(MovableDevice.class.getName());

    /** What a caller hears of moves; called on the client's own threads: return quickly. */
    public interface MoveListener {
        /** MOVED arrived: the device is paused at the source; the client is opening it at the target. */
        default void moving(Message.Moved to) { }

        /** The source released the device: it lives at the target now, on {@code socket}. */
        default void moved(Message.Moved to) { }

        /** The move was given up ({@code why}); the device stays with the source, which resumes it. */
        default void abandoned(Message.Moved to, String why) { }

        /** The device was unplugged (not moved) by the bus that had it. */
        default void removed(DevId devid) { }

        MoveListener NONE = new MoveListener() { };
    }

    private final String clientName;
    private final MoveListener listener;
    // Guarded by this.
    private BusClient bus;
    private ClientDevice device;
    private Path socket;
    private Move move;   // the move under way, or null
    private int moves;
    private boolean closed;

    /** A move under way: where to, the target's connection and handle once made, and what has happened so far. */
    private static final class Move {
        final Message.Moved to;
        BusClient there;
        ClientDevice device;
        boolean reopened;        // the target has our memory and doorbells
        boolean sourceReleased;  // DEVDROP from the source came
        Move(Message.Moved to) { this.to = to; }
    }

    private MovableDevice(String clientName, MoveListener listener) {
        this.clientName = clientName;
        this.listener = listener == null ? MoveListener.NONE : listener;
    }

    /** Connects to {@code socket} on a connection of its own and opens {@code devid} there. */
    public static MovableDevice open(Path socket, DevId devid, String clientName, MoveListener listener) {
        MovableDevice m = new MovableDevice(clientName, listener);
        BusClient bus = BusClient.connect(socket, clientName, m.eventsFrom(socket));
        try {
            ClientDevice d = bus.open(devid);
            synchronized (m) {
                m.bus = bus;
                m.device = d;
                m.socket = socket;
            }
            return m;
        } catch (RuntimeException e) {
            bus.close();
            throw e;
        }
    }

    /** The device's handle on the bus that has it now (changes when a move ends). */
    public synchronized ClientDevice device() { return device; }

    /** The socket of the bus that has the device now. */
    public synchronized Path socket() { return socket; }

    /** How many moves have ended with the device at the target. */
    public synchronized int moves() { return moves; }

    /** Whether a move is under way (MOVED came, and neither DEVDROP at the source nor a failure yet). */
    public synchronized boolean isMoving() { return move != null; }

    // ---- events, on the connections' reader threads ----

    private BusEventListener eventsFrom(Path from) {
        return new BusEventListener() {
            @Override public void onEvent(Message.Event e) { event(from, e); }

            @Override public void onDisconnect(BusClientException why) { disconnected(from, why); }
        };
    }

    private void event(Path from, Message.Event e) {
        switch (e) {
            case Message.Moved m -> moving(from, m);
            case Message.DevDrop d -> dropped(from, d.devid());
            default -> { }
        }
    }

    private void moving(Path from, Message.Moved m) {
        synchronized (this) {
            if (closed || !from.equals(socket) || !m.devid().equals(device.devid())) return;
            if (move != null) {
                LOG.warning(() -> clientName + ": a second MOVED while one move is under way is ignored: " + m);
                return;
            }
            move = new Move(m);
        }
        listener.moving(m);
        Thread.ofPlatform().daemon().name(clientName + "-follow").start(() -> follow(m));
    }

    /** Opens the device at the target and hands it the memory and doorbells; on its own thread. */
    private void follow(Message.Moved m) {
        Path there = Path.of(m.socket());
        BusClient target = null;
        try {
            target = BusClient.connect(there, clientName, eventsFrom(there));
            ClientDevice source;
            synchronized (this) {
                if (move == null || move.to != m) {   // given up meanwhile
                    target.close();
                    return;
                }
                move.there = target;
                source = device;
            }
            ClientDevice reopened = source.reopenOn(target, m.devidThere());
            boolean commit;
            synchronized (this) {
                if (move == null || move.to != m) {
                    reopened.handOver();
                    target.close();
                    return;
                }
                move.device = reopened;
                move.reopened = true;
                commit = move.sourceReleased;
            }
            if (commit) commit(m);
        } catch (RuntimeException e) {
            LOG.log(Level.INFO, clientName + ": cannot follow the device to " + there, e);
            giveUp(m, "cannot open the device at " + there + ": " + e.getMessage());
        }
    }

    private void dropped(Path from, DevId devid) {
        Message.Moved m = null;
        boolean commit = false, abandon = false, removed = false;
        synchronized (this) {
            if (closed) return;
            if (move != null && from.equals(Path.of(move.to.socket())) && devid.equals(move.to.devidThere())) {
                abandon = true;   // the source undid the move: it removed what the target made
                m = move.to;
            } else if (from.equals(socket) && devid.equals(device.devid())) {
                if (move != null) {
                    move.sourceReleased = true;
                    commit = move.reopened;
                    m = move.to;
                } else {
                    removed = true;
                }
            }
        }
        if (commit) commit(m);
        if (abandon) giveUp(m, "the target dropped the device: the source undid the move");
        if (removed) listener.removed(devid);
    }

    private void disconnected(Path from, BusClientException why) {
        Message.Moved m;
        synchronized (this) {
            if (closed || move == null || !from.equals(Path.of(move.to.socket()))) return;
            m = move.to;
        }
        giveUp(m, "the target's connection ended: " + (why == null ? "closed" : why.getMessage()));
    }

    /** The source released the device: the target's handle takes over, the source connection goes. */
    private void commit(Message.Moved m) {
        BusClient old;
        ClientDevice oldDevice;
        synchronized (this) {
            if (move == null || move.to != m) return;
            old = bus;
            oldDevice = device;
            bus = move.there;
            device = move.device;
            socket = Path.of(m.socket());
            move = null;
            moves++;
        }
        oldDevice.handOver();
        closeElsewhere(old);
        listener.moved(m);
    }

    private void giveUp(Message.Moved m, String why) {
        BusClient target;
        ClientDevice reopened;
        synchronized (this) {
            if (move == null || move.to != m) return;
            target = move.there;
            reopened = move.device;
            move = null;
        }
        if (reopened != null) reopened.handOver();
        if (target != null) closeElsewhere(target);
        listener.abandoned(m, why);
    }

    /** Closes a connection off the calling thread, which may be that connection's own reader. */
    private static void closeElsewhere(BusClient c) {
        Thread.ofVirtual().start(c::close);
    }

    /** Closes the device (DEVCLOSE: the bus resets and frees it), its queues, and every connection. */
    @Override
    public void close() {
        BusClient b, target;
        ClientDevice d, reopened;
        synchronized (this) {
            if (closed) return;
            closed = true;
            b = bus;
            d = device;
            target = move == null ? null : move.there;
            reopened = move == null ? null : move.device;
            move = null;
        }
        if (reopened != null) reopened.handOver();
        if (target != null) target.close();
        try {
            d.close();
        } catch (RuntimeException e) {
            LOG.log(Level.FINE, clientName + ": DEVCLOSE failed on close", e);
        }
        b.close();
    }

    @Override
    public synchronized String toString() {
        return "MovableDevice[" + device.devid() + " on " + socket + (move != null ? ", moving to " + move.to.socket() : "") + "]";
    }
}
