package dev.jvbus.connector.vhostuser.realclients;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.connector.vhostuser.VhostUserBackend;
import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.testing.TestNetns;
import dev.jvbus.model.virtionet.VirtioNetFeatures;
import dev.jvbus.model.virtionet.VirtioNetModel;
import dev.jvbus.net.DropReason;
import dev.jvbus.net.L2Switch;
import dev.jvbus.net.Networks;
import dev.jvbus.net.SwitchPort;
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
 * A real Linux guest's TCP with segmentation offload through our back-end: QEMU's virtio-net driver
 * negotiates HOST_TSO4 and GUEST_TSO4 (with CSUM/GUEST_CSUM) from our device, its iperf3 client sends to an
 * iperf3 server behind a {@link TapPort} with offloads, and the guest's super-frames go through the switch
 * to the TAP whole, with their header, for the kernel to take as they are: more bytes per frame than an
 * Ethernet MTU holds, nothing segmented by the switch, no offload header refused.
 */
@Tag("real-client")
@Timeout(value = 10, unit = TimeUnit.MINUTES)
class QemuGuestTsoTest {
    static final String MAC = "52:54:00:12:34:57", PEER = "192.0.2.1";
    static final Pattern IPERF = Pattern.compile("JVBUS-IPERF3 sender_mbps=(\\S+) receiver_mbps=(\\S+)");

    @TempDir Path tmp;

    @Test
    void aGuestWithTsoNegotiatedPassesIperf3ThroughTheSwitchToATapAsSuperFrames() throws Exception {
        GuestImage.requireWithIperf3();
        Container c = Bus.withDiscoveredModels().createContainer("qemu-tso");
        Device device = c.addDevice(VirtioNetModel.TYPE, -1L, Map.of("network", "tsonet", "mac", MAC));
        L2Switch sw = Networks.of(c).getOrCreate("tsonet");
        Path sock = tmp.resolve("vhost.sock");
        try (TestNetns ns = TestNetns.createOrSkip();
             TapPort tap = TapPort.create(sw, "jvbtso0", ns.namespace(), true);
             VhostUserBackend backend = VhostUserBackend.serve(device, sock)) {
            ns.address("jvbtso0", PEER + "/24");   // before the server binds to it (under load it raced: EADDRNOTAVAIL)
            try (ProcessConsole server = ProcessConsole.start("iperf3-tso",
                    ns.wrap(List.of(Tools.IPERF3.path().toString(), "-s", "-1", "-B", PEER, "--forceflush")),
                    Duration.ofMinutes(5), tmp.resolve("iperf3-server.log"))) {
                server.awaitLine("Server listening", Duration.ofSeconds(10));
                QemuGuest.Builder b = QemuGuest.builder().name("vu-tso").mac(MAC).vhostUser(sock)
                        .ip("192.0.2.10/24").peer(PEER).steps("carrier", "iperf3:5")
                        .timeout(QemuGuest.BOOT_WAIT.plus(Duration.ofMinutes(2)));
                try (QemuGuest guest = b.start()) {
                    Matcher m = guest.awaitLine(IPERF, QemuGuest.BOOT_WAIT);
                    long negotiated = device.features().negotiated();
                    SwitchPort toTap = tap.switchPort();
                    String devicePort = c.name() + "/" + device.devid().value() + ":virtio-net";
                    SwitchPort dev = sw.ports().stream().filter(p -> p.name().equals(devicePort)).findFirst().orElseThrow();
                    System.out.printf("[real-client] TSO guest: iperf3 %s Mbit/s received; negotiated %s; to the TAP %d frames, %d bytes"
                                    + " (%d per frame); segmented by the switch: %d; %s%n", m.group(2),
                            device.featureCatalog().names(negotiated), toTap.framesOut(), toTap.bytesOut(),
                            toTap.framesOut() == 0 ? 0 : toTap.bytesOut() / toTap.framesOut(), toTap.framesSegmented(), tap.stats());
                    assertThat(VirtioNetFeatures.HOST_TSO4.in(negotiated) && VirtioNetFeatures.GUEST_TSO4.in(negotiated)
                            && VirtioNetFeatures.CSUM.in(negotiated)).as("the guest took TSO").isTrue();
                    assertThat(Double.parseDouble(m.group(2))).as("iperf3 receiver Mbit/s").isPositive();
                    assertThat(toTap.bytesOut() / Math.max(1, toTap.framesOut())).as("bytes per frame to the TAP: super-frames")
                            .isGreaterThan(1514);
                    assertThat(toTap.framesSegmented()).as("super-frames the TAP takes whole").isZero();
                    assertThat(toTap.dropped(DropReason.BAD_OFFLOAD) + dev.dropped(DropReason.BAD_OFFLOAD)).isZero();
                    assertThat(tap.stats().offloadDrops() + tap.stats().writeErrors()).isZero();
                }
            }
        }
    }
}
