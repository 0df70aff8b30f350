package dev.jvbus.app.service;

import dev.jvbus.app.store.TopologyRecorder;
import dev.jvbus.core.bus.BusException;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.DevId;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.bus.DeviceStatus;
import dev.jvbus.core.bus.NoSuchDeviceException;
import dev.jvbus.core.bus.QueueStats;
import dev.jvbus.core.feature.FeatureCatalog;
import dev.jvbus.core.feature.FeatureView;
import dev.jvbus.core.spi.DeviceModel;
import dev.jvbus.core.spi.QueueSpec;
import dev.jvbus.net.Networks;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.IntStream;
import org.springframework.stereotype.Service;

/** Devices: hotplug, list, show, hot-remove. */
@Service
public class DeviceService {
    private final BusChanges changes;
    private final ContainerService containers;

    public DeviceService(BusChanges changes, ContainerService containers) {
        this.changes = changes;
        this.containers = containers;
    }

    public List<DeviceView> list(String container) {
        return containers.require(container).devices().stream().map(DeviceService::view).toList();
    }

    /** The device models this bus has, by type: what a hotplug may name, with their feature and queue names. */
    public List<ModelView> models() {
        return changes.bus().models().all().stream()
                .sorted(java.util.Comparator.comparing(DeviceModel::type))
                .map(m -> new ModelView(m.type(), m.virtioDeviceId() != 0, m.features().names(m.features().mask()),
                        m.queues().queues().stream().map(QueueSpec::name).toList()))
                .toList();
    }

    public DeviceView show(String container, long devid) {
        return view(require(container, devid));
    }

    /** The device types this bus can hotplug, each with the features it can offer (for a hotplug form). */
    public List<DeviceTypeView> types() {
        return changes.bus().models().types().stream().sorted()
                .map(t -> changes.bus().models().model(t).orElseThrow())
                .map(m -> new DeviceTypeView(m.type(), m.virtioDeviceId() != 0, m.features().bits().stream()
                        .map(b -> new DeviceTypeView.Feature(b.bit(), b.name(), shortName(b.name()), b.description())).toList()))
                .toList();
    }

    /**
     * What a driver of a new {@code type} device would be offered under {@code limit}, by name: what a
     * guest could negotiate, before anything is plugged in. Refused as a hotplug would refuse the same
     * type and limit.
     */
    public List<String> offerUnder(String type, FeatureLimit limit) {
        return offerUnder(type, limit, Map.of());
    }

    /**
     * What a driver of a new {@code type} device made with the model parameters {@code params} would be offered
     * under {@code limit}, by name: the device's own offer ({@link DeviceModel#features(Map)}: virtio-net with
     * {@code queue-pairs=1} offers no MQ), within the limit, less what the limit withdraws with a feature it
     * requires ({@link #withdrawnUnder}), as the device does. Refused as a hotplug would refuse the same type,
     * parameters and limit.
     */
    public List<String> offerUnder(String type, FeatureLimit limit, Map<String, String> params) {
        Offer o = offer(type, limit, params);
        return o.catalog().names(o.catalog().withRequirementsMet(o.within()));
    }

    /**
     * The features {@code limit} takes out of such a device's offer without naming them, each with the requirement
     * it lost (unchecking GUEST_CSUM withdraws GUEST_TSO4): a driver that checks would refuse a device offering them.
     */
    public List<WithdrawnFeature> withdrawnUnder(String type, FeatureLimit limit, Map<String, String> params) {
        Offer o = offer(type, limit, params);
        return o.catalog().withdrawals(o.within()).stream()
                .map(w -> new WithdrawnFeature(w.feature().name(), w.unmet().requiredNames())).toList();
    }

    /** A device's own catalog for {@code params}, and the bits of it within {@code limit}. */
    private record Offer(FeatureCatalog catalog, long within) { }

    private Offer offer(String type, FeatureLimit limit, Map<String, String> params) {
        DeviceModel model = changes.bus().models().model(type == null ? "" : type).orElseThrow(() -> new OperationRefused(
                ProblemType.UNKNOWN_DEVICE_TYPE, "unknown device type '" + type + "'; this bus has " + changes.bus().models().types(),
                Map.of("field", "type")));
        long mask = (limit == null ? FeatureLimit.NONE : limit).mask(model.type(), model.features());
        FeatureCatalog offer;
        try {
            offer = model.features(params);
        } catch (IllegalArgumentException e) {
            throw new OperationRefused(ProblemType.INVALID_PARAMETER, e.getMessage(),
                    Map.of("field", parameterNamed(e.getMessage(), params).map(n -> "parameters." + n).orElse("parameters")));
        }
        return new Offer(offer, offer.mask() & mask);
    }

    /**
     * The parameter a model's refusal is about, so a form can show the message beside it: the one it names
     * ({@code parameter 'mtu' ...}), or else the one whose value it quotes ({@code not a MAC address: 'x'}).
     */
    static Optional<String> parameterNamed(String message, Map<String, String> params) {
        if (message == null) return Optional.empty();
        for (String name : params.keySet()) if (message.contains("parameter '" + name + "'")) return Optional.of(name);
        for (Map.Entry<String, String> p : params.entrySet())
            if (!p.getValue().isBlank() && message.contains("'" + p.getValue() + "'")) return Optional.of(p.getKey());
        return Optional.empty();
    }

    /** The MAC a device's config space gives its driver (generated or the operator's), for models that have one. */
    public Optional<String> mac(String container, long devid) {
        return TopologyRecorder.macOf(require(container, devid));
    }

    /**
     * VIRTIO_NET_F_MRG_RXBUF is MRG_RXBUF, VENET_CAP_SG is SG: what is left after the prefix, a name
     * {@link FeatureLimit#resolve} takes back.
     */
    static String shortName(String name) {
        for (String marker : new String[] {"_F_", "_CAP_"}) {
            int f = name.indexOf(marker);
            if (f >= 0) return name.substring(f + marker.length());
        }
        return name;
    }

    /**
     * Hotplugs a device. Everything an operator can get wrong is checked before the bus is asked,
     * so a refused hotplug leaves nothing behind: no device, no port, no socket.
     */
    public DeviceView add(String container, DeviceRequest request) {
        long t0 = System.nanoTime();
        DeviceView added = changes.apply(() -> {
            Container c = containers.require(container);
            if (request.type() == null || request.type().isBlank())
                throw new OperationRefused(ProblemType.INVALID_PARAMETER, "a device needs a \"type\"; this bus has "
                        + changes.bus().models().types(), Map.of("field", "type"));
            DeviceModel model = changes.bus().models().model(request.type()).orElseThrow(() -> new OperationRefused(
                    ProblemType.UNKNOWN_DEVICE_TYPE, "unknown device type '" + request.type() + "'; this bus has "
                            + changes.bus().models().types(), Map.of("field", "type")));
            long limit = (request.limit() == null ? FeatureLimit.NONE : request.limit()).mask(model.type(), model.features());
            Map<String, String> params = request.modelParameters();
            try {
                model.queues(params);   // the model's one rule for queue sizes, asked first so the refusal names the field
            } catch (IllegalArgumentException e) {
                throw new OperationRefused(ProblemType.INVALID_PARAMETER, e.getMessage(), Map.of("field", "queueSize"));
            }
            if (request.network() != null && Networks.of(c).network(request.network()).isEmpty())
                throw new OperationRefused(ProblemType.NO_SUCH_NETWORK, "no network '" + request.network() + "' in container '"
                        + container + "'; create it first (it has " + Networks.of(c).names() + ")", Map.of("field", "network"));
            if (c.devices().size() >= c.deviceLimit())
                throw new OperationRefused(ProblemType.LIMIT_REACHED, "container '" + container + "' already has its limit of "
                        + c.deviceLimit() + " devices");
            Device d;
            try {
                d = c.addDevice(model.type(), limit, params);
            } catch (BusException e) {
                // What is left is the model refusing its parameters (it says which and why).
                throw new OperationRefused(ProblemType.INVALID_PARAMETER, e.getMessage(),
                        parameterNamed(e.getMessage(), params).<Map<String, Object>>map(f -> Map.of("field", f)).orElse(Map.of()));
            }
            return new BusChanges.Outcome<>(view(d), null);   // the container's DeviceAdded event is forwarded
        });
        changes.took(ChangeTook.HOTPLUG, System.nanoTime() - t0);   // hotplug latency, for metrics
        return added;
    }

    /** Unplugs the device: it is reset, its driver told, its port closed. */
    public void remove(String container, long devid) {
        changes.apply(() -> {
            require(container, devid);
            changes.requireIdle(container, devid);   // not in the middle of a snapshot or migration
            removeUnchecked(container, devid);
            return new BusChanges.Outcome<>(null, null);
        });
    }

    /** For a change already inside the door (a forced network delete). */
    void removeUnchecked(String container, long devid) {
        changes.requireIdle(container, devid);
        containers.require(container).removeDevice(new DevId((int) devid));
    }

    public Device require(String container, long devid) {
        Container c = containers.require(container);
        if (devid < 0 || devid > 0xFFFF_FFFFL)
            throw new OperationRefused(ProblemType.NO_SUCH_DEVICE, "not a devid (unsigned 32-bit number): " + devid);
        try {
            return c.device(new DevId((int) devid));
        } catch (NoSuchDeviceException e) {
            throw new OperationRefused(ProblemType.NO_SUCH_DEVICE, "no device " + devid + " in container '" + container
                    + "'; it has " + c.devices().stream().map(x -> x.devid().unsigned()).toList());
        }
    }

    static DeviceView view(Device d) {
        FeatureCatalog cat = d.featureCatalog();
        FeatureView f = d.features();
        List<DeviceView.Queue> queues = new ArrayList<>();
        var layout = d.queues();
        List<QueueStats> now = d.queueStats();
        IntStream.range(0, layout.count()).forEach(i -> {
            QueueSpec q = layout.queue(i);
            QueueStats s = now.get(i);
            queues.add(new DeviceView.Queue(i, q.name(), q.kind().name().toLowerCase(), q.maxSize(), q.required(), s.size(), s.running(),
                    s.nextAvail(), s.nextUsed(), s.inFlight(), s.available(),
                    new DeviceView.Counters(s.buffers(), s.bytes(), s.kicks(), s.lateWakeups(), s.notificationsSent(), s.notificationsSuppressed(), s.linesEvicted(), s.faults())));
        });
        return new DeviceView(d.container(), d.devid().unsigned(), d.type(), DeviceStatus.names(d.status().bits()),
                d.needsResetReason().orElse(null),
                new DeviceView.Features(f.availableNames(cat), f.limitedNames(cat), f.offeredNames(cat), f.negotiatedNames(cat),
                        f.withdrawnNames(cat)),
                Map.copyOf(d.params()), queues, ExposureService.ofDevice(d));
    }

}
