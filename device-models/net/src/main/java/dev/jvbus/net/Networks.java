package dev.jvbus.net;

import dev.jvbus.core.bus.Container;
import dev.jvbus.core.ring.PollGroup;
import dev.jvbus.core.spi.ContainerResource;
import dev.jvbus.core.spi.DeviceContext;
import dev.jvbus.core.sys.NetNamespace;
import dev.jvbus.core.sys.TapDevice;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * The named networks (switches) of one container. Each container has its own instance, a container
 * resource ({@link #RESOURCE}): the operator reaches it with {@link #of(Container)}, a device with
 * {@link #of(DeviceContext)}; two containers, or two buses with containers of the same name, never
 * share a network.
 *
 * <p>The operator {@link #create creates}, {@link #list lists} and {@link #delete deletes} networks. A
 * device whose {@code network} parameter names a network that does not exist creates it when it first
 * joins ({@link #getOrCreate}, the one place that does so), as {@code ./jvbus run} relies on. A network
 * lives until it is deleted or its container is destroyed, whether or not ports are on it; deleting one
 * with ports on it is refused, naming them, because pulling a running device off its wire behind its
 * guest's back is never what an operator meant.
 */
public final class Networks implements AutoCloseable {
    /** The key under which every container keeps its networks. */
    public static final ContainerResource<Networks> RESOURCE = ContainerResource.of("networks", Networks.class, Networks::new);
    private static final Pattern NAME = Pattern.compile("[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}");

    private final String container;
    private final Map<String, L2Switch> byName = new TreeMap<>();
    /** The operator's TAP ports, in the order they were attached. */
    private final List<TapAttachment> taps = new ArrayList<>();

    private Networks(String container) {
        this.container = container;
    }

    /** The networks of {@code container} (the operator's way in). */
    public static Networks of(Container container) {
        return container.resource(RESOURCE);
    }

    /** The networks of the container a device lives in (a model's way in). */
    public static Networks of(DeviceContext context) {
        return context.resource(RESOURCE);
    }

    /** The container these networks belong to. */
    public String container() {
        return container;
    }

    /**
     * Creates an empty network.
     *
     * @throws IllegalArgumentException if the name is not valid (letters, digits, '.', '_', '-'; up to 63)
     * @throws NetworkException if the container already has a network of that name
     */
    public synchronized L2Switch create(String name) {
        checkName(name);
        if (byName.containsKey(name)) throw new NetworkException("network '" + name + "' already exists in container '" + container + "'");
        L2Switch sw = new L2Switch(name);
        byName.put(name, sw);
        return sw;
    }

    /**
     * The network named {@code name}, created if it does not exist: how a device joins the network its
     * parameters name. Operators should prefer {@link #create}, which says when the name is taken.
     */
    public synchronized L2Switch getOrCreate(String name) {
        L2Switch sw = byName.get(name);
        return sw != null ? sw : create(name);
    }

    /** The network named {@code name}, if it exists. */
    public synchronized Optional<L2Switch> network(String name) {
        return Optional.ofNullable(byName.get(name));
    }

    /** The network named {@code name}, or a clear error. */
    public L2Switch require(String name) {
        return network(name).orElseThrow(() -> new NetworkException("no network '" + name + "' in container '" + container + "'; it has " + names()));
    }

    /** Network names, sorted. */
    public synchronized List<String> names() {
        return List.copyOf(byName.keySet());
    }

    /** A snapshot of every network, by name. */
    public List<NetworkInfo> list() {
        List<L2Switch> all;
        synchronized (this) {
            all = List.copyOf(byName.values());
        }
        return all.stream().map(L2Switch::info).toList();
    }

    /** A snapshot of the network named {@code name}, if it exists. */
    public Optional<NetworkInfo> info(String name) {
        return network(name).map(L2Switch::info);
    }

    /** The port of device {@code devid} (unsigned) on {@code network}, if that network exists and the device joined it. */
    public Optional<PortInfo> devicePort(String network, long devid) {
        return info(network).flatMap(n -> n.devicePort(devid));
    }

    /**
     * Deletes a network that has no ports. A device that still holds the deleted switch (it looked the
     * network up just before) cannot join it afterwards: its join fails, saying the network was deleted.
     *
     * @throws NetworkException if there is no such network, or ports are on it (the message names them:
     *         remove those devices, or close those TAP ports, first)
     */
    public synchronized void delete(String name) {
        L2Switch sw = require(name);
        List<PortInfo> on = sw.retireIfEmpty();
        if (!on.isEmpty())
            throw new NetworkException("network '" + name + "' in container '" + container + "' still has " + on.size()
                    + (on.size() == 1 ? " port: " : " ports: ") + on.stream().map(Networks::describe).collect(Collectors.joining(", "))
                    + "; remove those devices (or close those TAP ports) first");
        byName.remove(name);
    }

    private static String describe(PortInfo p) {
        return "#" + p.id() + " " + switch (p.backend()) {
            case PortBackend.Device d -> d.type() + " device " + Long.toUnsignedString(d.devid());
            case PortBackend.Tap t -> "TAP " + t.ifname();
            case PortBackend.Other o -> o.name();
        };
    }

    /**
     * The one rule for network names, checked where an operator gives one (a device's {@code network}
     * parameter, {@link #create}).
     *
     * @throws IllegalArgumentException naming the rule if {@code name} breaks it
     */
    public static String checkName(String name) {
        if (name == null || !NAME.matcher(name).matches())
            throw new IllegalArgumentException("invalid network name '" + name + "': use 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit");
        return name;
    }

    // ---- TAP ports: the operator's way to reach the host from a network ----

    /**
     * A TAP port the operator attached: the network it is on, its port id there, the namespace its
     * interface lives in, and the port itself (which owns the TAP).
     */
    public record TapAttachment(String network, int portId, NetNamespace namespace, TapPort port) {
        /** The interface name as the kernel gave it. */
        public String ifname() {
            return port.device().name();
        }
    }

    /**
     * Creates a TAP named {@code ifname} in {@code namespace}, sets its link up (addresses stay the
     * operator's) and joins it to {@code network}. It lives until {@link #detachTap} or until the container
     * goes away ({@link #close}); closing it removes the interface.
     *
     * @throws NetworkException if there is no such network
     * @throws IllegalArgumentException if {@code ifname} is not an interface name
     * @throws dev.jvbus.core.sys.TapException saying what the kernel refused (no such namespace, no
     *         capability, the name is taken by another kind of interface ...)
     */
    public synchronized TapAttachment attachTap(String network, String ifname, NetNamespace namespace) {
        return attachTap(network, ifname, namespace, null);
    }

    /**
     * As {@link #attachTap(String, String, NetNamespace)}, the TAP read by {@code readBy}'s thread (one of the
     * container's poll groups), or by a reader thread of its own when null. Read by a group, the TAP's answers to a
     * device whose tx queue the same group serves need no hand-off between two of our threads (see {@link TapPort}).
     */
    public synchronized TapAttachment attachTap(String network, String ifname, NetNamespace namespace, PollGroup readBy) {
        L2Switch sw = require(network);
        TapPort port = TapPort.open(sw, TapDevice.create(ifname, namespace, true), null, readBy);
        TapAttachment a = new TapAttachment(network, port.switchPort().id(), namespace, port);
        taps.add(a);
        return a;
    }

    /**
     * Closes the TAP port {@code portId} of {@code network} (it leaves the switch; its interface is removed).
     *
     * @throws NetworkException if that port is not an attached TAP port (the message says what it is)
     */
    public void detachTap(String network, int portId) {
        TapAttachment found;
        synchronized (this) {
            found = taps.stream().filter(t -> t.network().equals(network) && t.portId() == portId).findFirst()
                    .orElseThrow(() -> new NetworkException(info(network).flatMap(n -> n.ports().stream().filter(p -> p.id() == portId).findFirst())
                            .map(p -> "port #" + portId + " of network '" + network + "' is " + describe(p) + ", not a TAP port the operator attached")
                            .orElse("network '" + network + "' in container '" + container + "' has no port #" + portId)));
            taps.remove(found);
        }
        found.port().close();   // outside the lock: it waits (within its bound) for the reader thread
    }

    /** The attached TAP ports, in the order they were attached. */
    public synchronized List<TapAttachment> taps() {
        return List.copyOf(taps);
    }

    /** The container goes away: its TAP ports close (their interfaces are removed). */
    @Override
    public void close() {
        List<TapAttachment> all;
        synchronized (this) {
            all = List.copyOf(taps);
            taps.clear();
        }
        for (TapAttachment t : all) t.port().close();
    }

    @Override
    public String toString() {
        return "Networks[" + container + ": " + names() + "]";
    }
}
