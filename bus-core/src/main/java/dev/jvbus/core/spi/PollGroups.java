package dev.jvbus.core.spi;

import dev.jvbus.core.doorbell.DoorbellWait;
import dev.jvbus.core.ring.PollGroup;
import dev.jvbus.core.ring.QueueWorker;
import java.util.Map;

/**
 * A container's {@link PollGroup}s: one per core this process may run on, made when first needed, each a
 * thread that goes round the queues given to it. A device whose operator leaves {@value #PARAM} at its
 * default ({@link Poll#SHARED}) puts each of its tx queues in the group with the fewest members; with
 * {@code poll=own} each queue gets a thread of its own, as before poll groups.
 *
 * <p>How an idle queue's thread waits is the operator's second choice, {@value #BUSY_POLL_PARAM}: {@code off} (the
 * default, {@link DoorbellWait.Mode#ADAPTIVE}) spins as long as the queues' pace pays for and then sleeps on their
 * doorbells, leaving the core to others; {@code on} ({@link DoorbellWait.Mode#PURE_SPIN}) never sleeps, as a DPDK PMD
 * thread or Linux vhost's busy loop: the thread keeps a core for as long as it has queues, and a driver never needs
 * to kick. That is for a host that gives the bus dedicated cores; on shared cores it takes one from the guests.
 * Busy-polling queues go to groups of their own ({@code <container>/busy-poll-N}), so they never keep a sleeping
 * device's queues spinning, nor does a sleeping group delay theirs.
 *
 * <p>Why one per core and not one: a group is one thread, so it caps what its queues move at one core. As
 * many groups as cores the JVM may use ({@link Runtime#availableProcessors()}, which follows the CPU
 * affinity and cgroup quota) lets a container's queues use every core, and no two of its polling threads
 * share a core that they could each keep busy. A bus pinned to one core gets one group: OVS's one PMD thread.
 *
 * <p>Per container, never shared with another (a {@link ContainerResource}, so here beside it: the ring package,
 * where the groups' loop is, does not depend on the SPI); closed with the container, after its devices (which
 * stop their workers first).
 */
public final class PollGroups implements AutoCloseable {
    /** The device parameter that picks how a device's queues are polled: {@code shared} (default) or {@code own}. */
    public static final String PARAM = "poll";
    /** The device parameter that picks how a device's idle queues wait: {@code off} (default: spin, then sleep) or {@code on} (never sleep). */
    public static final String BUSY_POLL_PARAM = "busy-poll";
    public static final ContainerResource<PollGroups> RESOURCE =
            ContainerResource.of("poll-groups", PollGroups.class, c -> new PollGroups(c, Runtime.getRuntime().availableProcessors()));

    /** How a device's queues are polled. */
    public enum Poll {
        /** By the container's poll groups, beside other devices' queues (one thread per core). */
        SHARED,
        /** Each by a thread of its own. */
        OWN;

        /** The {@value #PARAM} parameter of {@code params}, checked (the one place): absent means {@link #SHARED}. */
        public static Poll of(Map<String, String> params) {
            String v = params.get(PARAM);
            if (v == null) return SHARED;
            return switch (v.trim()) {
                case "shared" -> SHARED;
                case "own" -> OWN;
                default -> throw new IllegalArgumentException("parameter '" + PARAM + "' must be 'shared' or 'own': '" + v + "'");
            };
        }
    }

    /**
     * How a device's queues are polled, as its operator set it: by whom ({@value #PARAM}) and how they idle
     * ({@value #BUSY_POLL_PARAM}).
     */
    public record Polling(Poll by, DoorbellWait.Mode idle) {
        public static final Polling DEFAULT = new Polling(Poll.SHARED, DoorbellWait.Mode.ADAPTIVE);

        /** Both parameters of {@code params}, checked: absent means {@link #DEFAULT}. */
        public static Polling of(Map<String, String> params) {
            return new Polling(Poll.of(params), idleOf(params));
        }
    }

    /**
     * The {@value #BUSY_POLL_PARAM} parameter of {@code params}, checked (the one place, for every model that takes it):
     * absent or {@code off} means {@link DoorbellWait.Mode#ADAPTIVE}, {@code on} {@link DoorbellWait.Mode#PURE_SPIN}.
     */
    public static DoorbellWait.Mode idleOf(Map<String, String> params) {
        String v = params.get(BUSY_POLL_PARAM);
        if (v == null) return DoorbellWait.Mode.ADAPTIVE;
        return switch (v.trim()) {
            case "off" -> DoorbellWait.Mode.ADAPTIVE;
            case "on" -> DoorbellWait.Mode.PURE_SPIN;
            default -> throw new IllegalArgumentException("parameter '" + BUSY_POLL_PARAM + "' must be 'on' or 'off': '" + v + "'");
        };
    }

    private static final java.util.logging.Logger LOG = java.util.logging.Logger.getLogger(PollGroups.class.getName());
    private final String container;
    /** Per idle mode ({@link DoorbellWait.Mode#ordinal}), the groups made so far, up to one per core. */
    private final PollGroup[][] groups;
    private boolean closed;

    /** {@code count} groups (at least one) for the container named {@code container}. */
    public PollGroups(String container, int count) {
        this.container = container;
        this.groups = new PollGroup[DoorbellWait.Mode.values().length][Math.max(1, count)];
    }

    /** How many groups of each idle mode the container may have. */
    public int count() {
        return groups[0].length;
    }

    /** The groups made so far and not over, of either mode (for monitoring: each one's {@link PollGroup#doorbellWait()}). */
    public synchronized java.util.List<PollGroup> groups() {
        java.util.List<PollGroup> live = new java.util.ArrayList<>();
        for (PollGroup[] family : groups)
            for (PollGroup g : family) if (g != null && !g.isClosed()) live.add(g);
        return live;
    }

    /** {@link #pick(DoorbellWait.Mode)} among the groups that spin, then sleep: the default. */
    public PollGroup pick() {
        return pick(DoorbellWait.Mode.ADAPTIVE);
    }

    /**
     * The group for one more queue: the one with the fewest members; a new group (a new thread) only when every
     * existing one is busy with a queue already, so a container that never has two queues at once keeps one thread.
     * A group that is over (closed, or its thread's wait broke: {@link PollGroup#isClosed}) is dropped and its place
     * is free again: handed out, it refused every join, so each device start in the container failed on it for the
     * container's life. Only groups that idle as {@code idle} says are candidates.
     */
    public synchronized PollGroup pick(DoorbellWait.Mode idle) {
        if (closed) throw new IllegalStateException("the poll groups of container " + container + " are closed");
        PollGroup[] groups = this.groups[idle.ordinal()];
        PollGroup best = null;
        int free = -1;
        for (int i = 0; i < groups.length; i++) {
            if (groups[i] != null && groups[i].isClosed()) {
                PollGroup over = groups[i];
                LOG.warning(() -> over.name() + " is over: a new group will take its place");
                groups[i] = null;
            }
            if (groups[i] == null) {
                if (free < 0) free = i;
            } else if (best == null || groups[i].size() < best.size()) {
                best = groups[i];
            }
        }
        if (free >= 0 && (best == null || best.size() > 0))
            return groups[free] = new PollGroup(container + (idle == DoorbellWait.Mode.PURE_SPIN ? "/busy-poll-" : "/poll-") + free, idle,
                    () -> pick(idle));   // over at a join: the next pick
        return best;
    }

    @Override
    public void close() {
        java.util.List<PollGroup> gs = new java.util.ArrayList<>();
        synchronized (this) {
            if (closed) return;
            closed = true;
            for (PollGroup[] family : groups) gs.addAll(java.util.Arrays.asList(family));
        }
        for (PollGroup g : gs) if (g != null) g.close();
        for (PollGroup g : gs) if (g != null) g.awaitEnd(QueueWorker.WAIT_BOUND);
    }

    @Override
    public String toString() {
        return "PollGroups[" + container + ", " + count() + "]";
    }
}
