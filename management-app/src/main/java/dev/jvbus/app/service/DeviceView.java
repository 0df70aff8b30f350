package dev.jvbus.app.service;

import java.util.List;
import java.util.Map;

/**
 * A device as the management plane shows it. Features follow Kivity's list: what the model can do
 * ({@code available}), what the operator took away ({@code limited}), what a driver is offered, and
 * what the driver took ({@code negotiated}), each by name. {@code exposures} are the device's own
 * (vhost-user sockets), each with its sessions: which front-end (pid, uid) drives it and what it negotiated.
 */
public record DeviceView(String container, long devid, String type, List<String> status, String needsResetReason,
                         Features features, Map<String, String> parameters, List<Queue> queues,
                         List<ExposureView> exposures) {

    /**
     * {@code withdrawn}: features the limit took out of the offer without naming them, each with the requirement
     * it lost ("VIRTIO_NET_F_CTRL_RX (requires VIRTIO_NET_F_CTRL_VQ)"): the offer never has a feature without
     * what it requires.
     */
    public record Features(List<String> available, List<String> limited, List<String> offered, List<String> negotiated,
                           List<String> withdrawn) { }

    /**
     * A queue of the device's model (its name, ring kind and largest size) as it is now: the size the
     * driver gave it, whether it runs, where the ring is as the device sees it ({@code nextAvail},
     * {@code nextUsed}, {@code inFlight}, {@code available}: null while it does not run) and its counters
     * since the device was plugged in. Racy reads: each value exact, the set not atomic.
     */
    public record Queue(int index, String name, String ring, int maxSize, boolean required, int size, boolean running,
                        Integer nextAvail, Integer nextUsed, Integer inFlight, Integer available, Counters counters) { }

    /**
     * What a queue's data path did since the device was plugged in; the counts never go down (driver
     * resets, queue restarts and restores included). {@code bytes}: a split ring's buffers count their
     * device-readable bytes plus the length the device wrote; an IOQ ring's the length each descriptor was
     * completed with. {@code lateWakeups}: wake-ups of the queue's worker that found it with work its driver had
     * not rung for (a stall: a doorbell suppressed while the ring had work). {@code linesEvicted}: descriptor and frame cache
     * lines a virtio-net tx worker evicted after giving the buffers back (0 where eviction does not pay or is
     * unavailable; see CacheLines). {@code faults}: ring faults by reason, only those that occurred.
     */
    public record Counters(long buffers, long bytes, long kicks, long lateWakeups, long notificationsSent, long notificationsSuppressed,
                           long linesEvicted, Map<String, Long> faults) { }
}
