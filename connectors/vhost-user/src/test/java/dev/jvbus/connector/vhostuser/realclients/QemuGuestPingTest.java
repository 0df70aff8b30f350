package dev.jvbus.connector.vhostuser.realclients;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.connector.vhostuser.VhostUserBackend;
import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.testing.TestNetns;
import dev.jvbus.model.virtionet.VirtioNetModel;
import dev.jvbus.net.L2Switch;
import dev.jvbus.net.Networks;
import dev.jvbus.net.PortStats;
import dev.jvbus.net.TapPort;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A real Linux guest under QEMU, its own virtio-net driver, on OUR vhost-user back-end: the
 * guest's NIC is a bus virtio-net device on a switch whose other port is a TAP (192.0.2.1/24) in
 * a network namespace the test makes. The guest gets carrier, pings the TAP's kernel with replies,
 * and the switch counts frames both ways. Then QEMU is SIGKILLed mid-session: the device must be
 * reset and free, and a second guest on the same socket pings again.
 */
@Tag("real-client")
@Timeout(value = 10, unit = TimeUnit.MINUTES)   // a hang guard; each wait has its own bound (QemuGuest.BOOT_WAIT)
class QemuGuestPingTest {
    static final String MAC = "52:54:00:12:34:56";
    static final String NETWORK = "guestnet";

    @TempDir Path tmp;

    @Test
    void guestPingsATapThroughOurBackendAndASecondGuestPingsAfterTheFirstIsKilled() throws Exception {
        GuestImage.require();
        Tools.require(Tools.QEMU);
        Container c = Bus.withDiscoveredModels().createContainer("qemu-ping");
        Device device = c.addDevice(VirtioNetModel.TYPE, -1L, Map.of("network", NETWORK, "mac", MAC));
        L2Switch sw = Networks.of(c).getOrCreate(NETWORK);
        Path sock = tmp.resolve("vhost.sock");
        try (TestNetns ns = TestNetns.createOrSkip();
             TapPort tap = TapPort.create(sw, "jvbtap0", ns.namespace(), true);
             VhostUserBackend backend = VhostUserBackend.serve(device, sock)) {
            ns.address("jvbtap0", "192.0.2.1/24");
            String devicePort = c.name() + "/" + device.devid().value() + ":virtio-net";

            // ---- first guest: carrier, ping, then SIGKILL while the session is live ----
            try (QemuGuest guest = guest("vu-ping-1", sock, "carrier", "ping:5", "sleep:30").start()) {
                long t0 = System.nanoTime();
                assertThat(guest.awaitLine(QemuGuest.CARRIER, QemuGuest.BOOT_WAIT).group(1)).isEqualTo("up");
                Matcher ping = guest.awaitLine(QemuGuest.PING, QemuGuest.STEP_WAIT);
                long ms = (System.nanoTime() - t0) / 1_000_000;
                PortStats dev = portStats(sw, devicePort);
                PortStats tapStats = tap.switchPort().stats();
                System.out.printf("[real-client] guest 1 on our back-end: carrier up, ping sent=%s received=%s (%d ms from QEMU start);"
                                + " device port rx(from guest)=%d tx(to guest)=%d drops=%s; tap port rx=%d tx=%d; %s%n",
                        ping.group(1), ping.group(2), ms, dev.rxFrames(), dev.txFrames(), dev.drops(),
                        tapStats.rxFrames(), tapStats.txFrames(), tap.stats());
                assertPing(ping);
                assertFrames(dev, tapStats);
                assertThat(backend.sessionsStarted()).isEqualTo(1);
                assertThat(device.holder()).isPresent();

                killQemu(guest);
            }
            awaitFree(device);
            assertThat(device.status().bits()).as("device reset after the front-end died").isZero();
            assertThat(device.holder()).as("device free after the front-end died").isEmpty();

            // ---- second guest on the same socket; then its driver resets the device and pings again ----
            QemuGuest.Builder b2 = guest("vu-ping-2", sock, "carrier", "ping:5").script(REBIND_DRIVER).steps("carrier", "ping:5");
            try (QemuGuest guest = b2.start()) {
                ProcessConsole con = guest.console();
                assertThat(guest.awaitLine(QemuGuest.CARRIER, QemuGuest.BOOT_WAIT).group(1)).isEqualTo("up");
                int at = con.indexOf(0, QemuGuest.PING, QemuGuest.STEP_WAIT);
                Matcher ping = con.awaitLine(at, QemuGuest.PING, Duration.ZERO);
                PortStats dev = portStats(sw, devicePort);
                PortStats tapStats = tap.switchPort().stats();
                System.out.printf("[real-client] guest 2 after guest 1 was killed: ping sent=%s received=%s;"
                                + " device port rx=%d tx=%d; tap port rx=%d tx=%d%n",
                        ping.group(1), ping.group(2), dev.rxFrames(), dev.txFrames(), tapStats.rxFrames(), tapStats.txFrames());
                assertPing(ping);
                assertFrames(dev, tapStats);

                // unbind: the driver resets the device, QEMU stops the rings (GET_VRING_BASE); bind: new rings from index 0
                assertThat(con.awaitLine(at, QemuGuest.DONE, QemuGuest.STEP_WAIT).group(1)).as("driver unbound and bound again").isEqualTo("0");
                assertThat(con.awaitLine(at, QemuGuest.CARRIER, QemuGuest.STEP_WAIT).group(1)).isEqualTo("up");
                Matcher again = con.awaitLine(at + 1, QemuGuest.PING, QemuGuest.STEP_WAIT);
                dev = portStats(sw, devicePort);
                System.out.printf("[real-client] guest 2 after its driver reset the device: ping sent=%s received=%s; device port rx=%d tx=%d%n",
                        again.group(1), again.group(2), dev.rxFrames(), dev.txFrames());
                assertPing(again);
                assertFrames(dev, tap.switchPort().stats());
                assertThat(guest.waitForExit(QemuGuest.STEP_WAIT)).as("guest powers off").hasValue(0);
                assertThat(backend.sessionsStarted()).isEqualTo(2);
            }
            awaitFree(device);
            assertThat(device.status().bits()).isZero();
        }
    }

    /**
     * 3.5 GiB of guest RAM: QEMU's pc machine puts 3 GiB below 4G and the rest above, so the
     * front-end hands over two regions of one memfd, the second at an mmap offset of 3 GiB, and
     * the guest's page allocator takes buffers from the high one first.
     */
    @Test
    void guestWithMemoryAboveFourGigabytesPingsThroughARegionAtAnMmapOffset() throws Exception {
        GuestImage.require();
        Tools.require(Tools.QEMU);
        Container c = Bus.withDiscoveredModels().createContainer("qemu-highmem");
        Device device = c.addDevice(VirtioNetModel.TYPE, -1L, Map.of("network", NETWORK, "mac", MAC));
        L2Switch sw = Networks.of(c).getOrCreate(NETWORK);
        Path sock = tmp.resolve("vhost.sock");
        try (TestNetns ns = TestNetns.createOrSkip();
             TapPort tap = TapPort.create(sw, "jvbtap0", ns.namespace(), true);
             VhostUserBackend backend = VhostUserBackend.serve(device, sock);
             QemuGuest guest = guest("vu-highmem", sock, "carrier", "ping:5").memoryMib(3584).start()) {
            ns.address("jvbtap0", "192.0.2.1/24");
            assertThat(guest.awaitLine(QemuGuest.CARRIER, QemuGuest.BOOT_WAIT).group(1)).isEqualTo("up");
            Matcher ping = guest.awaitLine(QemuGuest.PING, QemuGuest.STEP_WAIT);
            PortStats dev = portStats(sw, c.name() + "/" + device.devid().value() + ":virtio-net");
            System.out.printf("[real-client] guest with 3.5 GiB (RAM above 4G): ping sent=%s received=%s; device port rx=%d tx=%d%n",
                    ping.group(1), ping.group(2), dev.rxFrames(), dev.txFrames());
            assertPing(ping);
            assertFrames(dev, tap.switchPort().stats());
            assertThat(guest.waitForExit(QemuGuest.STEP_WAIT)).hasValue(0);
        }
    }

    /**
     * Jumbo frames: MTU 9000 on our device, QEMU's NIC ({@code host_mtu}, so the guest's eth0 gets
     * 9000 through VIRTIO_NET_F_MTU) and the TAP. An 8000-byte ping is one 8042-byte frame each way:
     * the guest's driver sends it as several descriptors, and with MRG_RXBUF the reply is spread over
     * several of its receive buffers (about 1.5 KiB each), so the real layouts of both paths are used.
     */
    @Test
    void guestPingsWithJumboFramesSpreadOverSeveralBuffers() throws Exception {
        GuestImage.require();
        Tools.require(Tools.QEMU);
        Container c = Bus.withDiscoveredModels().createContainer("qemu-jumbo");
        Device device = c.addDevice(VirtioNetModel.TYPE, -1L, Map.of("network", NETWORK, "mac", MAC, "mtu", "9000"));
        L2Switch sw = Networks.of(c).getOrCreate(NETWORK);
        Path sock = tmp.resolve("vhost.sock");
        String script = """
                echo "JVBUS-MTU $(cat /sys/class/net/eth0/mtu)"
                out=$(ping -c 5 -s 8000 -W 2 192.0.2.1 2>&1); echo "$out"
                sent=$(echo "$out" | sed -n 's/^\\([0-9]*\\) packets transmitted.*/\\1/p')
                recv=$(echo "$out" | sed -n 's/.* \\([0-9]*\\) packets received.*/\\1/p')
                echo "JVBUS-PING sent=${sent:-0} received=${recv:-0}"
                """;
        try (TestNetns ns = TestNetns.createOrSkip();
             TapPort tap = TapPort.create(sw, "jvbtap0", ns.namespace(), true);
             VhostUserBackend backend = VhostUserBackend.serve(device, sock);
             QemuGuest guest = guest("vu-jumbo", sock, "carrier").script(script)
                     .qemuArgs("-global", "virtio-net-pci.host_mtu=9000").start()) {
            ns.ip("link", "set", "jvbtap0", "mtu", "9000");
            ns.address("jvbtap0", "192.0.2.1/24");
            assertThat(guest.awaitLine(QemuGuest.CARRIER, QemuGuest.BOOT_WAIT).group(1)).isEqualTo("up");
            assertThat(guest.awaitLine("JVBUS-MTU (\\d+)", QemuGuest.STEP_WAIT).group(1)).as("guest eth0 MTU").isEqualTo("9000");
            Matcher ping = guest.awaitLine(QemuGuest.PING, QemuGuest.STEP_WAIT);
            PortStats dev = portStats(sw, c.name() + "/" + device.devid().value() + ":virtio-net");
            System.out.printf("[real-client] guest jumbo ping (8000 B payload, 8042 B frames): sent=%s received=%s;"
                            + " device port rx=%d (%d B) tx=%d (%d B) drops=%s%n",
                    ping.group(1), ping.group(2), dev.rxFrames(), dev.rxBytes(), dev.txFrames(), dev.txBytes(), dev.drops());
            assertPing(ping);
            assertThat(dev.txBytes()).as("jumbo replies delivered to the guest").isGreaterThan(4L * 8042);
            assertThat(dev.rxBytes()).as("jumbo requests from the guest").isGreaterThan(4L * 8042);
            assertThat(guest.waitForExit(QemuGuest.STEP_WAIT)).hasValue(0);
        }
    }

    /** Client mode: QEMU listens ({@code server=on}, waiting for the back-end before it boots) and our back-end connects. */
    @Test
    void guestPingsWithQemuAsTheSocketServerAndOurBackendConnecting() throws Exception {
        GuestImage.require();
        Tools.require(Tools.QEMU);
        Container c = Bus.withDiscoveredModels().createContainer("qemu-client-mode");
        Device device = c.addDevice(VirtioNetModel.TYPE, -1L, Map.of("network", NETWORK, "mac", MAC));
        L2Switch sw = Networks.of(c).getOrCreate(NETWORK);
        Path sock = tmp.resolve("vhost.sock");
        try (TestNetns ns = TestNetns.createOrSkip();
             TapPort tap = TapPort.create(sw, "jvbtap0", ns.namespace(), true);
             QemuGuest guest = guest("vu-client-mode", sock, "carrier", "ping:5").vhostUserServer(sock).start();
             VhostUserBackend backend = VhostUserBackend.connect(device, sock)) {
            ns.address("jvbtap0", "192.0.2.1/24");
            assertThat(guest.awaitLine(QemuGuest.CARRIER, QemuGuest.BOOT_WAIT).group(1)).isEqualTo("up");
            Matcher ping = guest.awaitLine(QemuGuest.PING, QemuGuest.STEP_WAIT);
            PortStats dev = portStats(sw, c.name() + "/" + device.devid().value() + ":virtio-net");
            System.out.printf("[real-client] guest with QEMU as socket server (our back-end connects): ping sent=%s received=%s; device port rx=%d tx=%d%n",
                    ping.group(1), ping.group(2), dev.rxFrames(), dev.txFrames());
            assertPing(ping);
            assertFrames(dev, tap.switchPort().stats());
            assertThat(guest.waitForExit(QemuGuest.STEP_WAIT)).hasValue(0);
        }
    }

    /** Unbinds and binds the guest's virtio-net driver (a virtio device reset), then sets eth0 up again. */
    static final String REBIND_DRIVER = """
            set -e
            d=$(basename $(readlink /sys/class/net/eth0/device))
            echo $d > /sys/bus/virtio/drivers/virtio_net/unbind
            sleep 0.3
            echo $d > /sys/bus/virtio/drivers/virtio_net/bind
            i=0; while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
            ip addr add 192.0.2.10/24 dev eth0
            ip link set eth0 up
            """;

    static QemuGuest.Builder guest(String name, Path sock, String... steps) {
        return QemuGuest.builder().name(name).vhostUser(sock).mac(MAC)
                .ip("192.0.2.10/24").peer("192.0.2.1").steps(steps)
                .qemuArgs("-trace", "vhost_user_read", "-trace", "vhost_user_write", "-trace", "vhost_dev_*", "-trace", "vhost_user_set_mem_table_withfd");
    }

    /**
     * busybox ping counts every echo request it sent and every reply it got; the first request
     * waits for ARP in the guest kernel (not lost), but allow one loss for a slow first ARP
     * round-trip under TCG.
     */
    static void assertPing(Matcher ping) {
        assertThat(Integer.parseInt(ping.group(1))).as("echo requests sent").isEqualTo(5);
        assertThat(Integer.parseInt(ping.group(2))).as("echo replies received (one may be lost to ARP)").isGreaterThanOrEqualTo(4);
    }

    /** "rx" is what a port sent into the switch, "tx" what the switch delivered to it. */
    static void assertFrames(PortStats dev, PortStats tap) {
        assertThat(dev.rxFrames()).as("frames from the guest into the switch").isPositive();
        assertThat(dev.txFrames()).as("frames the switch delivered to the guest").isPositive();
        assertThat(tap.txFrames()).as("frames delivered into the TAP").isPositive();
        assertThat(tap.rxFrames()).as("frames the TAP's kernel sent").isPositive();
        assertThat(dev.rxFrames()).as("echo requests and ARP from the guest").isGreaterThanOrEqualTo(5);
        assertThat(dev.txFrames()).as("echo replies to the guest").isGreaterThanOrEqualTo(4);
    }

    static PortStats portStats(L2Switch sw, String port) {
        return sw.stats().stream().filter(s -> s.port().equals(port)).findFirst()
                .orElseThrow(() -> new AssertionError("no port " + port + " on " + sw + ": " + sw.stats()));
    }

    /** SIGKILL to QEMU itself (not to the timeout wrapper): no clean vhost-user shutdown at all. */
    static void killQemu(QemuGuest guest) throws InterruptedException {
        ProcessHandle.of(guest.console().pid()).ifPresent(h -> h.descendants()
                .filter(d -> d.info().command().orElse("").contains("qemu-system"))
                .forEach(ProcessHandle::destroyForcibly));
        assertThat(guest.waitForExit(Duration.ofSeconds(10))).as("QEMU gone after SIGKILL").isPresent();
    }

    static void awaitFree(Device device) throws InterruptedException {
        long deadline = System.nanoTime() + QemuGuest.STEP_WAIT.toNanos();
        while (device.holder().isPresent() && System.nanoTime() < deadline) Thread.sleep(20);
    }
}
