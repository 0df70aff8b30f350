package dev.jvbus.connector.shm.client;

import dev.jvbus.connector.shm.protocol.ErrorCode;
import dev.jvbus.connector.shm.protocol.Message;
import dev.jvbus.core.bus.DevId;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * A connection to one container's shm socket that outlives the bus behind it: when the bus goes away (killed,
 * restarted, upgraded) it connects again to the same socket path, with a bounded exponential backoff and, by
 * default, no limit on attempts, and takes up each device it had open where it was ({@link ClientDevice#resumeOn}):
 * same devid, same memory and eventfds, the features it had, every ring carrying on from its published indices.
 * The threads that use the rings need not notice: while the bus is down their buffers wait in the rings, and the
 * resumed bus takes them up, including what the dead bus had taken and not returned (which a receiver with a
 * delivery log skips if it had it, so a frame arrives once).
 *
 * <p>Callers see a {@link State} and hear of changes through a {@link Listener}. While reconnecting, one thread
 * sleeps between attempts; nothing spins. A resume the restarted bus refuses (it no longer offers the features,
 * the device's rings are laid out otherwise), or a bus that says this client may not connect, ends in
 * {@link State#GAVE_UP} at once: trying again would be refused again. A bus that is up but has not made the
 * device yet (NO_SUCH_DEVICE: its topology is still being restored) is tried again like a bus that is down.
 *
 * <pre>{@code
 * try (ResilientBus bus = ResilientBus.connect(socket, "my-app", ResilientBus.Backoff.DEFAULT, listener)) {
 *     ClientDevice dev = bus.open(devid);
 *     dev.negotiate(wanted); ... dev.setUpQueues(mem, 256, 256); dev.driverOk();
 *     // use the queues; after a restart of the bus they carry on; bus.device(devid) is the current handle
 * }
 * }</pre>
 */
public final class ResilientBus implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(ResilientBus.class.getName());

    /** Where the connection is. */
    public enum State {
        /** Connected, every device resumed (or opened). */
        CONNECTED,
        /** The bus went away; trying again after the next backoff delay. */
        RECONNECTING,
        /** No more attempts (the limit was reached, or the bus refused the resume); the devices are not resumed. */
        GAVE_UP,
        /** Closed by the caller. */
        CLOSED
    }

    /**
     * How to retry: the first delay, doubled after each failed attempt up to {@code maxDelay}; {@code maxAttempts}
     * attempts per outage before giving up, 0 for no limit.
     */
    public record Backoff(Duration firstDelay, Duration maxDelay, int maxAttempts) {
        /** 20 ms doubling up to 1 s, for ever. */
        public static final Backoff DEFAULT = new Backoff(Duration.ofMillis(20), Duration.ofSeconds(1), 0);

        public Backoff {
            if (firstDelay.isNegative() || firstDelay.isZero() || maxDelay.compareTo(firstDelay) < 0)
                throw new IllegalArgumentException("backoff needs 0 < firstDelay <= maxDelay, got " + firstDelay + ", " + maxDelay);
            if (maxAttempts < 0) throw new IllegalArgumentException("maxAttempts must be >= 0 (0: no limit), got " + maxAttempts);
        }

        /** The delay before attempt {@code attempt} (1-based) of an outage. */
        public Duration delay(int attempt) {
            long ms = firstDelay.toMillis();
            for (int i = 1; i < attempt && ms < maxDelay.toMillis(); i++) ms *= 2;
            return Duration.ofMillis(Math.min(ms, maxDelay.toMillis()));
        }

        public Backoff withMaxDelay(Duration max) { return new Backoff(firstDelay, max, maxAttempts); }

        public Backoff withMaxAttempts(int attempts) { return new Backoff(firstDelay, maxDelay, attempts); }
    }

    /** What a caller hears; called on the client's own threads: return quickly, make no requests. */
    public interface Listener {
        /** The state changed; {@code why} says what happened (the connection's end, the refusal, the attempts). */
        default void stateChanged(State state, String why) { }

        /** Events from the bus (DEVADD, DEVDROP, NEEDS_RESET, MOVED), as {@link BusEventListener#onEvent}. */
        default void event(Message.Event event) { }

        Listener NONE = new Listener() { };
    }

    private final Path socket;
    private final String clientName;
    private final Backoff backoff;
    private final Listener listener;
    // Guarded by this.
    private BusClient bus;
    private final Map<DevId, ClientDevice> devices = new LinkedHashMap<>();   // in the order opened: resumed in that order
    private State state = State.CONNECTED;
    private String why = "connected";
    private Thread reconnector;
    private int outages, attempts;
    private long downSinceNanos;
    private Duration lastGap = Duration.ZERO;

    private ResilientBus(Path socket, String clientName, Backoff backoff, Listener listener) {
        this.socket = socket;
        this.clientName = clientName;
        this.backoff = backoff;
        this.listener = listener == null ? Listener.NONE : listener;
    }

    /** Connects (the first connection is not retried: a bus that is not there yet is the caller's to wait for). */
    public static ResilientBus connect(Path socket, String clientName, Backoff backoff, Listener listener) {
        ResilientBus r = new ResilientBus(socket, clientName, backoff, listener);
        BusClient c = BusClient.connect(socket, clientName, r.eventsOf());
        synchronized (r) {
            r.bus = c;
        }
        return r;
    }

    public static ResilientBus connect(Path socket, String clientName) {
        return connect(socket, clientName, Backoff.DEFAULT, Listener.NONE);
    }

    /** Opens a device and keeps it across restarts of the bus; set it up on the handle returned. */
    public ClientDevice open(DevId devid) {
        BusClient c;
        synchronized (this) {
            if (state != State.CONNECTED) throw new BusClientException(null, "not connected: " + state + " (" + why + ")", false);
            if (devices.containsKey(devid)) throw new IllegalStateException(devid + " is open already");
            c = bus;
        }
        ClientDevice d = c.open(devid);
        synchronized (this) {
            devices.put(devid, d);
        }
        return d;
    }

    /** The device's handle on the bus now (it changes when the device is resumed after a restart). */
    public synchronized ClientDevice device(DevId devid) {
        ClientDevice d = devices.get(devid);
        if (d == null) throw new IllegalArgumentException(devid + " is not open here");
        return d;
    }

    /** The connection now; null while reconnecting. */
    public synchronized BusClient client() { return state == State.CONNECTED ? bus : null; }

    public synchronized State state() { return state; }

    /** Why the state is what it is. */
    public synchronized String reason() { return why; }

    /** Times the bus went away under this client. */
    public synchronized int outages() { return outages; }

    /** How long the last outage lasted, from the connection's end to every device resumed. */
    public synchronized Duration lastGap() { return lastGap; }

    /** Waits until the state is {@code wanted}; false on timeout. */
    public synchronized boolean awaitState(State wanted, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (state != wanted) {
            long left = deadline - System.nanoTime();
            if (left <= 0) return false;
            TimeUnit.NANOSECONDS.timedWait(this, left);
        }
        return true;
    }

    // ---- the connection's end, on its reader thread ----

    private BusEventListener eventsOf() {
        return new BusEventListener() {
            @Override public void onEvent(Message.Event e) {
                try {
                    listener.event(e);
                } catch (RuntimeException ex) {
                    LOG.log(Level.WARNING, clientName + ": listener failed on " + e, ex);
                }
            }

            @Override public void onDisconnect(BusClientException cause) {
                if (cause != null) lost(cause);
            }
        };
    }

    private void lost(BusClientException cause) {
        synchronized (this) {
            if (state != State.CONNECTED) return;
            outages++;
            attempts = 0;
            downSinceNanos = System.nanoTime();
            reconnector = Thread.ofPlatform().daemon().name(clientName + "-reconnect").unstarted(this::reconnect);
            change(State.RECONNECTING, "the bus went away: " + cause.getMessage());
            reconnector.start();
        }
    }

    /** Attempts until every device is resumed, the limit is reached, the bus refuses, or the caller closes. */
    private void reconnect() {
        while (true) {
            int attempt;
            BusClient old;
            synchronized (this) {
                if (state != State.RECONNECTING) return;
                attempt = ++attempts;
                if (backoff.maxAttempts() > 0 && attempt > backoff.maxAttempts()) {
                    change(State.GAVE_UP, "gave up after " + backoff.maxAttempts() + " attempts: " + why);
                    return;
                }
                old = bus;
            }
            closeQuietly(old);
            try {
                Thread.sleep(backoff.delay(attempt));   // a sleeping thread, never a spinning one
            } catch (InterruptedException closing) {
                return;
            }
            BusClient fresh = null;
            try {
                fresh = BusClient.connect(socket, clientName, eventsOf());
                List<Map.Entry<DevId, ClientDevice>> held;
                synchronized (this) {
                    if (state != State.RECONNECTING) {
                        fresh.close();
                        return;
                    }
                    held = new ArrayList<>(devices.entrySet());
                }
                Map<DevId, ClientDevice> resumed = new LinkedHashMap<>();
                for (Map.Entry<DevId, ClientDevice> e : held) resumed.put(e.getKey(), e.getValue().resumeOn(fresh));
                synchronized (this) {
                    if (state != State.RECONNECTING) {
                        fresh.close();
                        return;
                    }
                    for (Map.Entry<DevId, ClientDevice> e : resumed.entrySet()) devices.put(e.getKey(), e.getValue()).handOver();
                    bus = fresh;
                    lastGap = Duration.ofNanos(System.nanoTime() - downSinceNanos);
                    change(State.CONNECTED, "resumed " + resumed.size() + " device(s) after " + attempt + " attempt(s), "
                            + lastGap.toMillis() + " ms after the bus went away");
                    if (!fresh.isConnected())   // gone again before we got here: its reader found us not yet connected
                        Thread.ofVirtual().start(() -> lost(new BusClientException(null, "the bus went away again while resuming", true)));
                    return;
                }
            } catch (BusClientException e) {
                closeQuietly(fresh);
                if (permanent(e)) {
                    synchronized (this) {
                        if (state == State.RECONNECTING) change(State.GAVE_UP, "the bus refused: " + e.getMessage());
                    }
                    return;
                }
                synchronized (this) {
                    why = "attempt " + attempt + ": " + e.getMessage();
                }
                LOG.fine(() -> clientName + ": reconnect attempt " + attempt + " failed: " + e.getMessage());
            } catch (RuntimeException e) {
                closeQuietly(fresh);
                synchronized (this) {
                    why = "attempt " + attempt + ": " + e;
                }
            }
        }
    }

    /** A refusal that another attempt would meet again: the resume does not fit, or this client may not connect. */
    private static boolean permanent(BusClientException e) {
        ErrorCode c = e.code();
        return c == ErrorCode.DEVICE_ERROR || c == ErrorCode.DENIED || c == ErrorCode.UNSUPPORTED_VERSION;
    }

    private void change(State to, String reason) {   // holding this
        state = to;
        why = reason;
        notifyAll();
        try {
            listener.stateChanged(to, reason);
        } catch (RuntimeException e) {
            LOG.log(Level.WARNING, clientName + ": listener failed on " + to, e);
        }
    }

    private static void closeQuietly(BusClient c) {
        if (c == null) return;
        try {
            c.close();
        } catch (RuntimeException ignored) {
            // it is gone either way
        }
    }

    /** Closes every device (DEVCLOSE if connected; its doorbells in any case) and the connection; stops reconnecting. */
    @Override
    public void close() {
        BusClient c;
        List<ClientDevice> ds;
        Thread r;
        synchronized (this) {
            if (state == State.CLOSED) return;
            r = reconnector;
            change(State.CLOSED, "closed by the client");
            c = bus;
            ds = new ArrayList<>(devices.values());   // closing one whose bus is gone just closes its doorbells
            devices.clear();
        }
        if (r != null) r.interrupt();
        for (ClientDevice d : ds) {
            try {
                d.close();
            } catch (RuntimeException e) {
                LOG.log(Level.FINE, clientName + ": DEVCLOSE failed on close", e);
            }
        }
        closeQuietly(c);
    }

    @Override
    public synchronized String toString() {
        return "ResilientBus[" + socket + ", " + state + ", " + devices.keySet() + "]";
    }
}
