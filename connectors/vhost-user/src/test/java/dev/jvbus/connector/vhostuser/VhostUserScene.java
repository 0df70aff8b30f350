package dev.jvbus.connector.vhostuser;

import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.net.MacAddress;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The scene of an in-process vhost-user device test: a container of its own with virtio-net devices on its
 * default network, one of them served over vhost-user at a socket in a temporary directory to a front-end in
 * the test ({@link FrontEnd}: a real socket) whose guest is a {@link StreamGuest} (a real memfd, real
 * eventfds). {@link #close()} undoes all of it, the devices removed after the back-end is closed.
 */
final class VhostUserScene implements AutoCloseable {
    final Path dir;
    final Container container;
    private final List<Device> devices = new ArrayList<>();
    VhostUserBackend backend;
    StreamGuest guest;
    FrontEnd fe;

    /** {@code name} prefixes the directory and the container's name (made unique, as tests share one bus JVM). */
    VhostUserScene(String name) throws IOException {
        dir = Files.createTempDirectory("jvbus-" + name);
        container = Bus.withDiscoveredModels().createContainer(name + "-" + ProcessHandle.current().pid() + "-" + System.nanoTime());
    }

    /** A virtio-net device with MAC {@code mac} on the container's default network (devices join it in this order). */
    Device addDevice(long mac) {
        return addDevice(Map.of("mac", MacAddress.toString(mac)));
    }

    /** A virtio-net device with parameters {@code params} (its MAC among them) on the container's default network. */
    Device addDevice(Map<String, String> params) {
        Device d = container.addDevice("virtio-net", -1L, params);
        devices.add(d);
        return d;
    }

    /** Serves {@code d} at {@code a.sock} and connects the front-end, whose guest {@code guest} becomes (this scene closes it). */
    FrontEnd serve(Device d, StreamGuest guest) {
        this.guest = guest;
        backend = VhostUserBackend.serve(d, dir.resolve("a.sock"));
        fe = new FrontEnd(backend.socket());
        return fe;
    }

    @Override
    public void close() throws Exception {
        if (fe != null) fe.close();
        if (backend != null) backend.close();
        for (Device d : devices) container.removeDevice(d.devid());
        if (guest != null) guest.close();
        try (var s = Files.list(dir)) { s.forEach(p -> p.toFile().delete()); }
        Files.deleteIfExists(dir);
    }
}
