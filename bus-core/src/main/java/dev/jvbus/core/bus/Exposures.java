package dev.jvbus.core.bus;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;
import java.util.function.Function;
import java.util.function.LongSupplier;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The exposures of one container (see {@link Exposure}): connectors open them here, the operator lists
 * and closes them here, and the container closes them when what they expose goes away: a device's
 * exposures when the device is removed, all of them when the container is destroyed. A closed exposure
 * leaves the list at once; listing never shows a CLOSED one.
 *
 * <p>Ids come from the bus ({@code <kind>-<n>}, n counting up per bus), so they are unique within it and
 * never reused while it lives. Opening and listing are operator actions, never per frame: one lock.
 */
public final class Exposures {
    private static final Logger LOG = Logger.getLogger(Exposures.class.getName());

    private final String container;
    private final LongSupplier ids;
    private final Map<String, Exposure> byId = new LinkedHashMap<>();   // guarded by this; creation order
    private boolean closed;                                             // guarded by this
    private final List<ExposureObserver> observers = new CopyOnWriteArrayList<>();

    Exposures(String container, LongSupplier ids) {
        this.container = Objects.requireNonNull(container);
        this.ids = Objects.requireNonNull(ids);
    }

    public String container() {
        return container;
    }

    /**
     * Connectors: opens an exposure under a fresh id. {@code opener} gets the id, binds or connects its
     * socket and starts serving; what it returns is listed from then on. If the container is destroyed
     * meanwhile (or was already), the new exposure is closed and this throws.
     *
     * @throws BusException if the container was destroyed; whatever {@code opener} throws, unchanged
     */
    public <E extends Exposure> E expose(String kind, Function<String, E> opener) {
        String id;
        synchronized (this) {
            checkOpen();
            id = kind + "-" + ids.getAsLong();
        }
        E e = Objects.requireNonNull(opener.apply(id), "the connector opened nothing");
        if (!e.id().equals(id)) {
            e.close();
            throw new IllegalStateException("exposure " + e.id() + " was opened under id " + id);
        }
        boolean listed;
        synchronized (this) {
            listed = !closed;
            if (listed) byId.put(id, e);
        }
        if (listed) {
            tell(o -> o.opened(e));
            return e;
        }
        e.close();   // the container went away while the socket was being opened
        checkOpen();
        return e;
    }

    /** Connectors: {@code e} closed itself (it calls this from its close); it leaves the list. Observers hear of it once. */
    public void forget(Exposure e) {
        boolean left;
        synchronized (this) {
            left = byId.remove(e.id(), e);
        }
        if (left) tell(o -> o.closed(e));
    }

    /** Connectors: a peer of {@code e} got a session (called before the session serves, so before its end is told). */
    public void sessionOpened(Exposure e, SessionInfo s) {
        tell(o -> o.sessionOpened(e, s));
    }

    /** Connectors: that session ended (called once, after its devices were released). */
    public void sessionClosed(Exposure e, SessionInfo s) {
        tell(o -> o.sessionClosed(e, s));
    }

    /**
     * Tells {@code observer} from now on when an exposure of this container opens or closes and when a
     * session of one opens or ends (see {@link ExposureObserver}). Close the subscription to stop.
     */
    public Subscription watch(ExposureObserver observer) {
        observers.add(Objects.requireNonNull(observer));
        return () -> observers.remove(observer);
    }

    /** Every live exposure of this container and of its devices, oldest first. */
    public synchronized List<Exposure> list() {
        return List.copyOf(byId.values());
    }

    /** The live exposures of one device, oldest first. */
    public synchronized List<Exposure> of(DevId devid) {
        return byId.values().stream().filter(e -> e.devid().equals(Optional.of(devid))).toList();
    }

    public synchronized Optional<Exposure> find(String id) {
        return Optional.ofNullable(byId.get(id));
    }

    /** Snapshots of every live exposure, oldest first (what listing returns). */
    public List<ExposureInfo> infos() {
        return list().stream().map(Exposure::info).toList();
    }

    /**
     * Closes the exposure with this id.
     *
     * @throws BusException if this container has no such exposure
     */
    public void close(String id) {
        find(id).orElseThrow(() -> new BusException("container '" + container + "' has no exposure '" + id + "'")).close();
    }

    /** A device was removed: its exposures close (their peers see the hang-up). */
    void deviceRemoved(DevId devid) {
        closeEach(of(devid));
    }

    /** The container is destroyed: every exposure closes, and no new one may open. */
    void closeAll() {
        List<Exposure> all;
        synchronized (this) {
            closed = true;
            all = new ArrayList<>(byId.values());
        }
        Collections.reverse(all);
        closeEach(all);
    }

    private void closeEach(List<Exposure> list) {
        for (Exposure e : list) {
            try {
                e.close();
            } catch (RuntimeException ex) {
                // One connector failing to let go must not keep the others open.
                LOG.log(Level.WARNING, "container '" + container + "': closing exposure " + e.id() + " failed", ex);
            }
            forget(e);
        }
    }

    private void tell(Consumer<ExposureObserver> what) {
        for (ExposureObserver o : observers) {
            try {
                what.accept(o);
            } catch (RuntimeException ex) {
                // An observer's failure is its own: the connector that reported goes on serving.
                LOG.log(Level.WARNING, "container '" + container + "': an exposure observer failed", ex);
            }
        }
    }

    private void checkOpen() {
        synchronized (this) {
            if (closed) throw new BusException("container '" + container + "' was destroyed; nothing in it can be exposed");
        }
    }
}
