package dev.jvbus.core.testing;

import dev.jvbus.core.feature.FeatureBit;
import dev.jvbus.core.feature.FeatureCatalog;
import dev.jvbus.core.feature.VirtioFeatures;
import dev.jvbus.core.spi.ConfigField;
import dev.jvbus.core.spi.ConfigLayout;
import dev.jvbus.core.spi.DeviceContext;
import dev.jvbus.core.spi.DeviceFault;
import dev.jvbus.core.spi.DeviceFunction;
import dev.jvbus.core.spi.DeviceModel;
import dev.jvbus.core.spi.QueueBinding;
import dev.jvbus.core.spi.QueueLayout;
import dev.jvbus.core.spi.QueueSet;
import dev.jvbus.core.spi.QueueSpec;
import dev.jvbus.core.state.ModelState;
import dev.jvbus.core.state.ModelStateSchema;
import dev.jvbus.core.state.QueueState;
import dev.jvbus.core.state.RingKind;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Locale;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * A test-only device model, found through ServiceLoader from this module's test resources.
 * It echoes DEVCALL payloads and records what the bus asked of it, so tests can see the bus
 * drive a model without any model module existing.
 */
public final class EchoModel implements DeviceModel {
    public static final String TYPE = "test-echo";
    public static final FeatureBit UPPERCASE = new FeatureBit(0, "ECHO_F_UPPERCASE", "echo replies in upper case");
    public static final FeatureBit COUNTER = new FeatureBit(1, "ECHO_F_COUNTER", "count calls");
    public static final int CALL_ECHO = 1;
    public static final int CALL_FAIL = 2;

    /** Every function this model created, newest last, so tests can inspect them. */
    public static final List<Function> CREATED = new CopyOnWriteArrayList<>();

    @Override public String type() { return TYPE; }

    @Override public int virtioDeviceId() { return 0xFFFF; }

    @Override public FeatureCatalog features() {
        return FeatureCatalog.of(UPPERCASE, COUNTER, VirtioFeatures.INDIRECT_DESC, VirtioFeatures.EVENT_IDX, VirtioFeatures.VERSION_1);
    }

    @Override public QueueLayout queues() {
        return QueueLayout.of(new QueueSpec("rx", RingKind.SPLIT, 256), new QueueSpec("tx", RingKind.SPLIT, 256));
    }

    /** {@code queue-size} holds both queues to it, as the net models do. */
    @Override public QueueLayout queues(java.util.Map<String, String> params) {
        return queues().sizedBy(params);
    }

    @Override public ConfigLayout config() {
        return ConfigLayout.of(new ConfigField("id", 0, 4, false), new ConfigField("scratch", 4, 4, true));
    }

    /** What an echo device keeps beyond config and queues: how many calls it answered. */
    public record EchoState(long calls) implements ModelState {
        public static final ModelStateSchema<EchoState> SCHEMA = new ModelStateSchema<>(TYPE, 1, EchoState.class);
        public static final EchoState ZERO = new EchoState(0);

        public EchoState {
            if (calls < 0) throw new IllegalArgumentException("saved call count " + calls + " is negative");
        }

        @Override public ModelStateSchema<EchoState> schema() { return SCHEMA; }
    }

    @Override public ModelStateSchema<EchoState> stateSchema() { return EchoState.SCHEMA; }

    @Override public DeviceFunction create(DeviceContext context) {
        for (String k : context.params().keySet())
            if (!k.equals("label") && !k.equals(QueueLayout.SIZE_PARAM))
                throw new IllegalArgumentException("unknown parameter '" + k + "' (test-echo takes: label, queue-size)");
        Function f = new Function(context);
        CREATED.add(f);
        return f;
    }

    /** The per-device behaviour, with counters the tests read. */
    public static final class Function implements DeviceFunction {
        public final DeviceContext context;
        public volatile int starts, resets, quiesces, resumes;
        /** Times the bus let go of it (unplug, or a refused restore). */
        public volatile int closes;
        public volatile boolean failStart;
        public volatile boolean failSave;
        /** Quiesce fails as a data path that did not stop within its bound would. */
        public volatile boolean failQuiesce;
        public volatile long calls;
        public List<QueueState> queues = new ArrayList<>();
        public volatile QueueSet lastStart;
        /** Stops and starts one queue alone (see {@link DeviceFunction#resetsQueues()}); false: the bus's whole-device fallback. */
        public volatile boolean resetsQueues;
        /** Per-queue stops and starts, as "stop 1", "start 1". */
        public final List<String> queueOps = new CopyOnWriteArrayList<>();
        /** The binding of each queue's latest per-queue start, by index. */
        public final Map<Integer, QueueBinding> queueStarted = new java.util.concurrent.ConcurrentHashMap<>();
        /** queueActive calls while running, as "index=active". */
        public final List<String> activity = new CopyOnWriteArrayList<>();

        Function(DeviceContext context) {
            this.context = context;
            context.config().write("id", 0xEC40L);
        }

        @Override public void start(QueueSet set) throws DeviceFault {
            if (failStart) throw new DeviceFault("told to fail");
            lastStart = set;
            starts++;
        }

        @Override public void reset() { resets++; }

        @Override public boolean resetsQueues() { return resetsQueues; }

        /** The queue's position: its entry in {@link #queues} if a test put one there, else where its start resumed from. */
        @Override public QueueState stopQueue(int index) {
            queueOps.add("stop " + index);
            for (QueueState q : queues) if (q.index() == index) return q;
            QueueBinding b = queueStarted.containsKey(index) ? queueStarted.get(index) : lastStart.queue(index).orElseThrow();
            return b.resume() != null ? b.resume() : new QueueState(index, RingKind.SPLIT, b.config().size(), true, b.config().descAddr(),
                    b.config().availAddr(), b.config().usedAddr(), 0, 0, false, List.of());
        }

        @Override public void startQueue(QueueBinding queue) throws DeviceFault {
            if (failStart) throw new DeviceFault("told to fail");
            queueOps.add("start " + queue.index());
            queueStarted.put(queue.index(), queue);
        }

        @Override public void queueActive(int index, boolean active) { activity.add(index + "=" + active); }

        @Override public void close() { closes++; }

        @Override public void quiesce() throws DeviceFault {
            quiesces++;
            if (failQuiesce) throw new DeviceFault("queue 1: the worker did not park within its bound");
        }

        @Override public void resume() { resumes++; }

        @Override public List<QueueState> saveQueues() {
            if (failSave) throw new IllegalStateException("queue 1: publishUsed() before save (pushed, not published)");
            return queues;
        }

        @Override public EchoState saveModel() { return new EchoState(calls); }

        @Override public void restoreModel(ModelState state) {
            calls = ((EchoState) state).calls();
        }

        @Override public byte[] call(int func, byte[] payload) throws DeviceFault {
            calls++;
            return switch (func) {
                case CALL_ECHO -> UPPERCASE.in(context.negotiatedFeatures())
                        ? new String(payload, StandardCharsets.UTF_8).toUpperCase(Locale.ROOT).getBytes(StandardCharsets.UTF_8)
                        : payload.clone();
                case CALL_FAIL -> throw new DeviceFault("asked to fail");
                default -> throw new DeviceFault("unknown device call " + func);
            };
        }
    }
}
