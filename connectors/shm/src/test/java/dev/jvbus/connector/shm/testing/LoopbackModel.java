package dev.jvbus.connector.shm.testing;

import dev.jvbus.core.feature.FeatureCatalog;
import dev.jvbus.core.feature.VirtioFeatures;
import dev.jvbus.core.spi.ConfigLayout;
import dev.jvbus.core.spi.DeviceContext;
import dev.jvbus.core.spi.DeviceFault;
import dev.jvbus.core.spi.DeviceFunction;
import dev.jvbus.core.spi.DeviceModel;
import dev.jvbus.core.spi.QueueBinding;
import dev.jvbus.core.spi.QueueLayout;
import dev.jvbus.core.spi.QueueSet;
import dev.jvbus.core.spi.QueueSpec;
import dev.jvbus.core.ring.QueueFault;
import dev.jvbus.core.ring.QueueService;
import dev.jvbus.core.ring.QueueWorker;
import dev.jvbus.core.ring.virtio.DescriptorChain;
import dev.jvbus.core.ring.virtio.SplitVirtqueue;
import dev.jvbus.core.doorbell.DoorbellWait;
import dev.jvbus.core.state.RingKind;
import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * A test-only model ("test-loopback") whose data really moves through split rings: every buffer
 * the driver offers on tx (queue 1) is copied into the next buffer it offers on rx (queue 0), and
 * both are returned used. It shows a client's rings work end to end through the shm connector.
 */
public final class LoopbackModel implements DeviceModel {
    public static final String TYPE = "test-loopback";
    public static final int RX = 0, TX = 1;

    @Override public String type() { return TYPE; }

    @Override public FeatureCatalog features() {
        return FeatureCatalog.of(VirtioFeatures.EVENT_IDX, VirtioFeatures.VERSION_1);
    }

    @Override public QueueLayout queues() {
        return QueueLayout.of(new QueueSpec("rx", RingKind.SPLIT, 1024), new QueueSpec("tx", RingKind.SPLIT, 1024));
    }

    @Override public ConfigLayout config() { return ConfigLayout.empty(); }

    @Override public DeviceFunction create(DeviceContext context) { return new Function(context); }

    static final class Function implements DeviceFunction {
        private final DeviceContext context;
        private QueueWorker worker;

        Function(DeviceContext context) { this.context = context; }

        @Override public void start(QueueSet set) throws DeviceFault {
            QueueBinding rxb = set.queue(RX).orElseThrow(() -> new DeviceFault("rx queue is not set up"));
            QueueBinding txb = set.queue(TX).orElseThrow(() -> new DeviceFault("tx queue is not set up"));
            boolean eventIdx = VirtioFeatures.EVENT_IDX.in(set.features());
            try {
                SplitVirtqueue rx = SplitVirtqueue.create(RX, rxb.config().size(), rxb.config().descAddr(), rxb.config().availAddr(),
                        rxb.config().usedAddr(), set.memory(), eventIdx, false, rxb.call());
                SplitVirtqueue tx = SplitVirtqueue.create(TX, txb.config().size(), txb.config().descAddr(), txb.config().availAddr(),
                        txb.config().usedAddr(), set.memory(), eventIdx, false, txb.call());
                worker = new QueueWorker("loopback-" + context.container() + "-" + context.devid(), TX, new Loop(rx, tx),
                        List.of(rxb.kick(), txb.kick()), DoorbellWait.Mode.ADAPTIVE,
                        f -> set.run().needsReset(f.getMessage())).start();   // never on the worker thread: see DataPathRun
            } catch (QueueFault f) {
                throw new DeviceFault(f.getMessage(), f);
            }
        }

        @Override public void reset() {
            QueueWorker w = worker;
            worker = null;
            if (w != null) w.close();
        }
    }

    /** Copies tx chains into rx chains; a tx chain waits (popped) until an rx buffer is there. */
    private static final class Loop implements QueueService {
        private final SplitVirtqueue rx, tx;
        private final DescriptorChain txChain, rxChain;
        private boolean txPending;

        Loop(SplitVirtqueue rx, SplitVirtqueue tx) {
            this.rx = rx;
            this.tx = tx;
            this.txChain = tx.newChain();
            this.rxChain = rx.newChain();
        }

        @Override public boolean poll() throws QueueFault {
            boolean did = false;
            while (true) {
                if (!txPending && !(txPending = tx.pop(txChain))) break;
                if (!rx.pop(rxChain)) break;
                int copied = copy(txChain, rxChain);
                tx.pushUsed(txChain.head(), 0);
                rx.pushUsed(rxChain.head(), copied);
                txPending = false;
                did = true;
            }
            tx.publishUsed();
            rx.publishUsed();
            return did;
        }

        private static int copy(DescriptorChain from, DescriptorChain to) {
            int copied = 0;
            int w = to.readableCount();
            long wOff = 0;
            for (int r = 0; r < from.readableCount() && w < to.count(); r++) {
                long rOff = 0;
                while (rOff < from.length(r) && w < to.count()) {
                    long n = Math.min(from.length(r) - rOff, to.length(w) - wOff);
                    MemorySegment.copy(from.segment(r), from.offset(r) + rOff, to.segment(w), to.offset(w) + wOff, n);
                    rOff += n;
                    wOff += n;
                    copied += (int) n;
                    if (wOff == to.length(w)) {
                        w++;
                        wOff = 0;
                    }
                }
            }
            return copied;
        }

        @Override public boolean hasWork() {
            return (txPending || tx.hasAvailable()) && rx.hasAvailable();
        }

        @Override public boolean armDoorbell() {
            boolean txHas = tx.enableKicks();
            boolean rxHas = rx.enableKicks();
            return (txPending || txHas) && rxHas;
        }

        @Override public void disarmDoorbell() {
            tx.disableKicks();
            rx.disableKicks();
        }
    }
}
