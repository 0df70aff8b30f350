package dev.jvbus.model.virtionet;

import dev.jvbus.core.spi.PollGroups;
import dev.jvbus.core.spi.QueueLayout;
import dev.jvbus.net.MacAddress;
import dev.jvbus.net.MacSpoofCheck;
import dev.jvbus.net.Networks;
import java.util.Collections;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * The operator's parameters of one virtio-net device.
 *
 * @param network the switch it joins in its container ({@code network}, default "default")
 * @param mac     its address ({@code mac}, default a locally administered one derived from container and devid)
 * @param mtu     the MTU it reports with VIRTIO_NET_F_MTU ({@code mtu}, 68..9000, default 1500)
 * @param queuePairs how many rx/tx queue pairs it offers with VIRTIO_NET_F_MQ ({@value #PAIRS_PARAM}, 1..{@value #MAX_PAIRS},
 *                default {@value #DEFAULT_PAIRS}): each pair a driver sets up costs a tx worker and two rings, so
 *                the operator bounds it; the config space's {@code max_virtqueue_pairs}, and vhost-user's GET_QUEUE_NUM
 * @param macSpoofCheck whether the switch drops frames the device sends from any source but {@code mac}
 *                ({@value MacSpoofCheck#PARAM}, default on; a driver that picks its own address, as one
 *                without VIRTIO_NET_F_MAC does, needs it off)
 * @param polling how its tx queues are polled: {@value PollGroups#PARAM} ({@code shared}, the default: by the
 *                container's poll groups, one thread per core going round every device's queues; {@code own}: a thread
 *                per tx queue) and {@value PollGroups#BUSY_POLL_PARAM} ({@code off}, the default: an idle queue's thread
 *                spins a while, then sleeps on the doorbells; {@code on}: it never sleeps, keeping a core while the queue
 *                runs, for hosts that dedicate cores)
 * @param evict   which lines its tx workers evict from our caches after reading them, so that the driver's next write
 *                to them need not take them back from our core ({@value EvictedLines#PARAM}): {@code auto}, the default
 *                (null here), measures which pays and keeps measuring; {@code off}, {@code descriptors},
 *                {@code half-frames} or {@code frames} fix it (EvictedLines says what each is)
 * <p>and {@value QueueLayout#SIZE_PARAM}, the largest ring its queues take (a power of two up to
 * {@link VirtioNetModel#QUEUE_MAX}), which {@link VirtioNetModel#queues(Map)} reads.
 */
public record VirtioNetParams(String network, long mac, int mtu, MacSpoofCheck macSpoofCheck, int queuePairs,
                              PollGroups.Polling polling, EvictedLines evict) {
    public static final String PAIRS_PARAM = "queue-pairs";
    /** A small VM's vCPU count: a driver enables at most one pair per CPU (Linux), so more sit idle. */
    public static final int DEFAULT_PAIRS = 4;
    /** The operator's ceiling: each pair is a worker thread and 2 rings of up to 1024 entries. */
    public static final int MAX_PAIRS = 16;
    /** Sorted for the error message; unmodifiable, as any static collection must be. */
    public static final Set<String> KNOWN = Collections.unmodifiableSortedSet(new TreeSet<>(Set.of("network", "mac", "mtu", MacSpoofCheck.PARAM,
            QueueLayout.SIZE_PARAM, PAIRS_PARAM, PollGroups.PARAM, PollGroups.BUSY_POLL_PARAM, EvictedLines.PARAM)));
    public static final int DEFAULT_MTU = 1500;
    public static final int MIN_MTU = 68;
    public static final int MAX_MTU = 9000;

    /** @throws IllegalArgumentException naming the parameter that is wrong, and the known ones for an unknown name */
    public static VirtioNetParams parse(Map<String, String> p, String container, int devid) {
        for (String k : p.keySet())
            if (!KNOWN.contains(k))
                throw new IllegalArgumentException("unknown parameter '" + k + "' (virtio-net takes: " + String.join(", ", KNOWN) + ")");
        String network = p.getOrDefault("network", "default");
        Networks.checkName(network);
        long mac;
        if (p.containsKey("mac")) {
            mac = MacAddress.parse(p.get("mac"));
            if (MacAddress.isGroup(mac) || mac == 0)
                throw new IllegalArgumentException("parameter 'mac' must be a unicast address, not " + p.get("mac"));
        } else {
            mac = MacAddress.local(((long) (container.hashCode() & 0xff) << 32) | Integer.toUnsignedLong(devid));
        }
        int mtu = DEFAULT_MTU;
        if (p.containsKey("mtu")) {
            try {
                mtu = Integer.parseInt(p.get("mtu").trim());
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("parameter 'mtu' is not a number: '" + p.get("mtu") + "'");
            }
            if (mtu < MIN_MTU || mtu > MAX_MTU)
                throw new IllegalArgumentException("parameter 'mtu' must be in " + MIN_MTU + ".." + MAX_MTU + ": " + mtu);
        }
        return new VirtioNetParams(network, mac, mtu, MacSpoofCheck.from(p), queuePairs(p), PollGroups.Polling.of(p),
                EvictedLines.fixedBy(p));
    }

    /** The {@value #PAIRS_PARAM} parameter, checked: the one place (the model's queue layout reads it too). */
    public static int queuePairs(Map<String, String> p) {
        String given = p.get(PAIRS_PARAM);
        if (given == null) return DEFAULT_PAIRS;
        int n;
        try {
            n = Integer.parseInt(given.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("parameter '" + PAIRS_PARAM + "' is not a number: '" + given + "'");
        }
        if (n < 1 || n > MAX_PAIRS)
            throw new IllegalArgumentException("parameter '" + PAIRS_PARAM + "' must be in 1.." + MAX_PAIRS + ": " + n);
        return n;
    }
}
