package dev.jvbus.connector.vhostuser.realclients;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.connector.vhostuser.VhostUserBackend;
import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.bus.QueueStats;
import dev.jvbus.core.testing.TestNetns;
import dev.jvbus.model.virtionet.VirtioNetFeatures;
import dev.jvbus.model.virtionet.VirtioNetModel;
import dev.jvbus.net.L2Switch;
import dev.jvbus.net.Networks;
import dev.jvbus.net.TapPort;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Multiqueue with a real Linux guest: QEMU with two vCPUs and {@code queues=2} opens one vhost device per queue
 * pair on our back-end's socket (GET_QUEUE_NUM says how many we take), the guest's virtio-net negotiates
 * VIRTIO_NET_F_MQ and enables both pairs (QEMU serves the control queue itself and tells us with
 * SET_VRING_ENABLE), and iperf3 with four parallel streams in both directions to a TAP peer moves frames on
 * both tx queues (the guest's CPUs send on their own queue) and both rx queues (our flow hash spreads the
 * four flows). The counts are the bus's per-queue counters.
 */
@Tag("real-client")
@Timeout(value = 10, unit = TimeUnit.MINUTES)
class QemuGuestMultiqueueTest {
    static final String MAC = "52:54:00:12:34:58", PEER = "192.0.2.1";
    static final Pattern QUEUES = Pattern.compile("JVBUS-MQ rx_queues=(\\d+) tx_queues=(\\d+)");
    static final Pattern IPERF = Pattern.compile("JVBUS-MQ-IPERF rc=(\\d+)");
    /** Buffers each data queue must have carried: far more than the handshakes and ARP alone make. */
    static final long BUSY = 200;

    @TempDir Path tmp;

    @Test
    void aTwoCpuGuestWithQueues2PassesIperf3OnBothQueuePairs() throws Exception {
        GuestImage.requireWithIperf3();
        Container c = Bus.withDiscoveredModels().createContainer("qemu-mq");
        Device device = c.addDevice(VirtioNetModel.TYPE, -1L, Map.of("network", "mqnet", "mac", MAC, "queue-pairs", "2"));
        L2Switch sw = Networks.of(c).getOrCreate("mqnet");
        Path sock = tmp.resolve("vhost.sock");
        try (TestNetns ns = TestNetns.createOrSkip();
             TapPort tap = TapPort.create(sw, "jvbmq0", ns.namespace(), true);
             VhostUserBackend backend = VhostUserBackend.serve(device, sock)) {
            ns.address("jvbmq0", PEER + "/24");
            try (ProcessConsole server = ProcessConsole.start("iperf3-mq",
                    ns.wrap(List.of(Tools.IPERF3.path().toString(), "-s", "-1", "-B", PEER, "--forceflush")),
                    Duration.ofMinutes(5), tmp.resolve("iperf3-server.log"))) {
                server.awaitLine("Server listening", Duration.ofSeconds(10));
                // Both directions at once: the guest sends on the tx queue of the CPU it sends from (iperf3 pinned to
                // CPU 1 for its data; ACKs also from CPU 0, which takes the interrupt: INTx) and receives on the rx
                // queue our flow hash picks. Fixed client ports (--cport: 47000..47007) make the flows, and so their
                // rx queues, the same every run: two of the four streams each way hash to each pair.
                String script = "q=/sys/class/net/eth0/queues; echo \"JVBUS-MQ rx_queues=$(ls -d $q/rx-* | wc -l) tx_queues=$(ls -d $q/tx-* | wc -l)\"\n"
                        + "taskset 2 iperf3 -c " + PEER + " -t 6 -P 4 --bidir --cport 47000 -f m > /tmp/iperf.txt 2>&1; rc=$?\n"
                        + "tail -n 12 /tmp/iperf.txt\n"
                        + "echo \"JVBUS-MQ-IPERF rc=$rc\"\n";
                QemuGuest.Builder b = QemuGuest.builder().name("vu-mq").mac(MAC).vhostUser(sock).cpus(2).queues(2)
                        .ip("192.0.2.10/24").peer(PEER).steps("carrier").script(script)
                        .timeout(QemuGuest.BOOT_WAIT.plus(Duration.ofMinutes(3)));
                try (QemuGuest guest = b.start()) {
                    Matcher q = guest.awaitLine(QUEUES, QemuGuest.BOOT_WAIT);
                    Matcher m = guest.awaitLine(IPERF, QemuGuest.STEP_WAIT);
                    long negotiated = device.features().negotiated();
                    List<QueueStats> queues = device.queueStats();
                    System.out.printf("[real-client] MQ guest: %s rx / %s tx queues in the guest, iperf3 rc=%s; negotiated %s;%n",
                            q.group(1), q.group(2), m.group(1), device.featureCatalog().names(negotiated));
                    for (QueueStats s : queues)
                        System.out.printf("[real-client]   %-5s running=%s buffers=%d bytes=%d kicks=%d%n", s.name(), s.running(), s.buffers(), s.bytes(), s.kicks());
                    assertThat(VirtioNetFeatures.MQ.in(negotiated)).as("the guest took MQ").isTrue();
                    assertThat(q.group(1)).as("rx queues the guest enabled").isEqualTo("2");
                    assertThat(q.group(2)).as("tx queues the guest enabled").isEqualTo("2");
                    assertThat(m.group(1)).as("iperf3's exit code (its output is in the guest log)").isEqualTo("0");
                    for (int pair = 0; pair < 2; pair++) {
                        int rx = VirtioNetModel.rxQueue(pair), tx = VirtioNetModel.txQueue(pair);
                        assertThat(queues.get(rx).buffers()).as("buffers on rx%d", pair).isGreaterThan(BUSY);
                        assertThat(queues.get(tx).buffers()).as("buffers on tx%d", pair).isGreaterThan(BUSY);
                    }
                }
            }
        }
    }
}
