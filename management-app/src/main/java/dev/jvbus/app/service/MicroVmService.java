package dev.jvbus.app.service;

import dev.jvbus.connector.kvm.GuestLayout;
import dev.jvbus.connector.kvm.LiveMicroVm;
import dev.jvbus.connector.kvm.Responder;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.sys.Kvm;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Pattern;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.context.ApplicationEventPublisher;
import org.springframework.stereotype.Service;

/**
 * Micro-VMs on the KVM connector: start one attached to a container, list them, show one, stop one. Each is
 * an exposure of its container too (kind {@code kvm}), so its session and its device's negotiated features
 * are listed with everyone else's, and closing that exposure stops it. Micro-VMs live as long as this app:
 * they are not kept in the topology store, and a restart does not bring them back (their guest state is
 * the guest's memory, which goes with them).
 *
 * <p>Ended micro-VMs stay listed with their outcome (at most {@link #ENDED_KEPT} of them) so an operator
 * can see why one is gone.
 */
@Service
public class MicroVmService {
    static final int ENDED_KEPT = 32;
    /** The type the responder drives (models are found at run time, so the app names it rather than linking it). */
    private static final String VIRTIO_NET = "virtio-net";
    private static final Pattern IPV4 = Pattern.compile("(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)(\\.(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)){3}");

    private final BusChanges changes;
    private final ContainerService containers;
    private final DeviceService devices;
    private final ApplicationEventPublisher events;
    private final int limit;
    private final Map<String, LiveMicroVm> vms = new LinkedHashMap<>();   // guarded by this; start order

    public MicroVmService(BusChanges changes, ContainerService containers, DeviceService devices, ApplicationEventPublisher events,
                          @Value("${jvbus.microvms.limit:8}") int limit) {
        this.changes = changes;
        this.containers = containers;
        this.devices = devices;
        this.events = events;
        this.limit = limit;
    }

    public synchronized List<MicroVmView> list() {
        return vms.values().stream().map(MicroVmView::of).toList();
    }

    public MicroVmView show(String id) {
        return MicroVmView.of(require(id));
    }

    /** Starts one. Every input is checked before KVM is asked, so a refused request leaves nothing behind. */
    public MicroVmView create(MicroVmRequest r) {
        return changes.apply(() -> {
            if (r.program() == null || !r.program().equals(MicroVmView.RESPONDER))
                throw new OperationRefused(ProblemType.INVALID_PARAMETER, "\"program\" must name a bundled guest program; this bus has ["
                        + MicroVmView.RESPONDER + "] (answers ARP and ping on a virtio-net device)", Map.of("field", "program"));
            if (r.container() == null || r.container().isBlank())
                throw new OperationRefused(ProblemType.INVALID_PARAMETER, "a micro-VM needs a \"container\" to attach to", Map.of("field", "container"));
            Container c = containers.require(r.container());
            long memory = memory(r.memoryMiB());
            if (r.devid() == null)
                throw new OperationRefused(ProblemType.INVALID_PARAMETER, "the responder drives one virtio-net device: give its \"devid\"",
                        Map.of("field", "devid"));
            Device d = devices.require(c.name(), r.devid());
            if (!d.type().equals(VIRTIO_NET))
                throw new OperationRefused(ProblemType.INVALID_PARAMETER, "devid " + r.devid() + " is a " + d.type()
                        + " device; the responder drives a virtio-net device", Map.of("field", "devid"));
            changes.requireIdle(c.name(), r.devid());
            Optional<String> driver = d.holder();
            if (driver.isPresent())
                throw new OperationRefused(ProblemType.DEVICE_BUSY, "devid " + r.devid() + " is driven by " + driver.get()
                        + "; a device has one driver at a time", Map.of("field", "devid"));
            Inet4Address ip = ip(r.ip());
            Optional<String> why = Kvm.unavailable();
            if (why.isPresent()) throw new OperationRefused(ProblemType.KVM_UNAVAILABLE, "cannot start a micro-VM here: " + why.get());
            synchronized (this) {
                if (vms.values().stream().filter(v -> v.outcome().isEmpty()).count() >= limit)
                    throw new OperationRefused(ProblemType.LIMIT_REACHED, "this bus runs " + limit + " micro-VMs already (limit: "
                            + "jvbus.microvms.limit); stop one first");
            }
            LiveMicroVm vm;
            try {
                vm = LiveMicroVm.startResponder(c, memory, new Responder(r.devid(), ip), this::ended);
            } catch (RuntimeException e) {
                throw new OperationRefused(ProblemType.REFUSED, "KVM refused the micro-VM: " + e.getMessage());
            }
            synchronized (this) {
                vms.put(vm.id(), vm);
                forgetOldEnded();
            }
            MicroVmView v = MicroVmView.of(vm);
            return new BusChanges.Outcome<>(v, BusEvent.now("microvm-started", "/api/v1/microvms/" + vm.id(),
                    Map.of("container", c.name(), "devid", r.devid(), "program", v.program(), "ip", v.ip())));
        });
    }

    /** Stops one: its guest is stopped, its device reset and released. Stopping an ended one changes nothing. */
    public MicroVmView stop(String id) {
        LiveMicroVm vm = require(id);
        changes.apply(() -> {
            vm.close();
            return new BusChanges.Outcome<>(null, null);   // the end is told by ended(), however it came
        });
        return MicroVmView.of(vm);
    }

    /** On the micro-VM's thread (or the stopper's), once, when its guest has ended. */
    private void ended(LiveMicroVm vm) {
        MicroVmView v = MicroVmView.of(vm);
        Map<String, Object> details = new LinkedHashMap<>();
        details.put("container", v.container());
        details.put("devid", v.devid());
        details.put("outcome", v.outcome());
        events.publishEvent(BusEvent.now("microvm-ended", "/api/v1/microvms/" + vm.id(), details));
    }

    private synchronized void forgetOldEnded() {
        List<String> ended = new ArrayList<>();
        vms.forEach((id, v) -> { if (v.outcome().isPresent()) ended.add(id); });
        for (int i = 0; i < ended.size() - ENDED_KEPT; i++) vms.remove(ended.get(i));
    }

    private synchronized LiveMicroVm require(String id) {
        LiveMicroVm vm = vms.get(id);
        if (vm == null) throw new OperationRefused(ProblemType.NO_SUCH_MICROVM, "no micro-VM '" + id + "'; this bus has " + vms.keySet());
        return vm;
    }

    private static long memory(Integer mib) {
        int m = mib == null ? 4 : mib;
        long bytes = (long) m << 20;
        // The responder's rings, buffers and counters sit in the upper half of 4 MiB.
        if (m < 4 || m > 64 || m % 2 != 0)
            throw new OperationRefused(ProblemType.INVALID_PARAMETER, "\"memoryMiB\" must be a multiple of 2 from 4 to 64, not " + m,
                    Map.of("field", "memoryMiB"));
        try {
            GuestLayout.checkMemorySize(bytes);
        } catch (IllegalArgumentException e) {
            throw new OperationRefused(ProblemType.INVALID_PARAMETER, e.getMessage(), Map.of("field", "memoryMiB"));
        }
        return bytes;
    }

    private static Inet4Address ip(String text) {
        if (text == null || !IPV4.matcher(text).matches())
            throw new OperationRefused(ProblemType.INVALID_PARAMETER, "\"ip\" must be an IPv4 address such as 192.0.2.2, not " + text,
                    Map.of("field", "ip"));
        try {
            Inet4Address a = (Inet4Address) InetAddress.getByName(text);   // a literal: no lookup happens
            if (a.isMulticastAddress() || a.isAnyLocalAddress() || text.equals("255.255.255.255"))
                throw new OperationRefused(ProblemType.INVALID_PARAMETER, "\"ip\" must be a unicast address, not " + text, Map.of("field", "ip"));
            return a;
        } catch (UnknownHostException e) {
            throw new OperationRefused(ProblemType.INVALID_PARAMETER, "\"ip\" " + text + ": " + e.getMessage(), Map.of("field", "ip"));
        }
    }
}
