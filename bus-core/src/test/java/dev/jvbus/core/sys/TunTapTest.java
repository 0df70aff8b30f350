package dev.jvbus.core.sys;

import static dev.jvbus.core.testing.TestFrames.*;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.jvbus.core.testing.TestNetns;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.EnumSet;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** A real TAP in a real network namespace made by the test (skipped, saying why, where that is impossible). */
class TunTapTest {
    @RegisterExtension
    static final TestNetns.PerClass ns = new TestNetns.PerClass();

    @Test
    void theTapLivesInTheChosenNamespaceWithA12ByteVnetHeaderAndGoesAwayOnClose() {
        try (TapDevice tap = TapDevice.create("jvtap0", ns.namespace(), false);
             Arena arena = Arena.ofConfined()) {
            assertThat(tap.name()).isEqualTo("jvtap0");
            assertThat(tap.vnetHeaderSize()).isEqualTo(TapDevice.VNET_HDR_SIZE);
            assertThat(ns.ip("link", "show", "jvtap0")).contains("jvtap0").doesNotContain(",UP");
            assertThat(ns.ipResult("-d", "link", "show", "jvtap0").output()).contains("tun type tap").contains("vnet_hdr");
            MemorySegment buf = arena.allocate(2048);
            assertThat(tap.read(buf, 0, 2048)).isEqualTo(-Errno.EAGAIN);   // non-blocking, nothing queued
            assertThat(tap.write(buf, 0, TapDevice.VNET_HDR_SIZE + MIN_FRAME)).isEqualTo(-Errno.EIO); // link down
        }
        assertThat(ns.ipResult("link", "show", "jvtap0").exit()).isNotZero();
    }

    @Test
    void theKernelNumbersTheNameAndUpSetsTheLinkUpInsideTheNamespace() {
        try (TapDevice tap = TapDevice.create("jvt%d", ns.namespace(), true)) {
            assertThat(tap.name()).matches("jvt[0-9]+");
            assertThat(ns.ip("link", "show", tap.name())).containsPattern("<[A-Z,_]*UP[A-Z,_]*>");
        }
    }

    @Test
    void anArpRequestWrittenFromThisThreadIsAnsweredThroughTheFd() {
        byte[] mac = localMac(7), me = ip(192, 0, 2, 2), kernel = ip(192, 0, 2, 1);
        try (TapDevice tap = TapDevice.create("jvtap1", ns.namespace(), true);
             Epoll epoll = Epoll.create(1);
             Arena arena = Arena.ofConfined()) {
            ns.ip("addr", "add", "192.0.2.1/24", "dev", "jvtap1");
            MemorySegment hdr = arena.allocate(TapDevice.VNET_HDR_SIZE);   // zero: no offload asked for
            MemorySegment frame = arena.allocate(MIN_FRAME);
            MemorySegment.copy(arpRequest(mac, me, kernel), 0, frame, ValueLayout.JAVA_BYTE, 0, MIN_FRAME);
            assertThat(tap.write(hdr, 0, frame, 0, MIN_FRAME)).isEqualTo(TapDevice.VNET_HDR_SIZE + MIN_FRAME);

            epoll.add(tap, Epoll.IN, 1);
            MemorySegment in = arena.allocate(TapDevice.VNET_HDR_SIZE + 1514);
            long deadline = System.nanoTime() + 5_000_000_000L;
            byte[] reply = null;
            while (reply == null && System.nanoTime() < deadline) {
                if (epoll.wait(200) == 0) continue;
                int n;
                while ((n = tap.read(in, 0, (int) in.byteSize())) > 0) {
                    byte[] f = in.asSlice(TapDevice.VNET_HDR_SIZE, n - TapDevice.VNET_HDR_SIZE).toArray(ValueLayout.JAVA_BYTE);
                    if (arpOp(f) == 2) reply = f;   // ignore IPv6 router solicitations and the like
                }
                assertThat(n).isEqualTo(-Errno.EAGAIN);
            }
            assertThat(reply).as("ARP reply from the kernel").isNotNull();
            assertThat(arpSenderIp(reply)).isEqualTo(kernel);
            assertThat(arpTargetMac(reply)).isEqualTo(mac);
            assertThat(dstMac(reply)).isEqualTo(mac);
        }
    }

    @Test
    void offloadsAreSetAndInvalidCombinationsRefusedClearly() {
        try (TapDevice tap = TapDevice.create("jvtap2", ns.namespace(), false)) {
            tap.setOffload(EnumSet.of(TunOffload.CSUM, TunOffload.TSO4, TunOffload.TSO6, TunOffload.TSO_ECN));
            tap.setOffload(Set.of());
            assertThatThrownBy(() -> tap.setOffload(EnumSet.of(TunOffload.TSO4)))
                    .isInstanceOf(TapException.class).hasMessageContaining("need CSUM")
                    .extracting(e -> ((TapException) e).errno()).isEqualTo(Errno.EINVAL);
        }
        long csumTso4Ecn = (1L << 1) | (1L << 7) | (1L << 9);
        assertThat(TunOffload.forVirtioGuestFeatures(csumTso4Ecn)).containsExactly(TunOffload.CSUM, TunOffload.TSO4, TunOffload.TSO_ECN);
        assertThat(TunOffload.forVirtioGuestFeatures(1L << 7)).isEmpty();   // TSO without GUEST_CSUM: nothing
    }

    @Test
    void aMissingNamespaceOrCapabilityIsNamed() {
        assertThatThrownBy(() -> TapDevice.create("jvtap3", NetNamespace.named(ns.name() + "-absent"), false))
                .isInstanceOf(TapException.class)
                .hasMessageContaining("does not exist").hasMessageContaining("ip netns add");
        // Dropping CAP_NET_ADMIN inside this JVM is not possible for one call, so the errno-to-message
        // mapping the kernel's EPERM/ENOENT would take is checked directly.
        assertThat(TapDevice.explainSetIff(Errno.EPERM, "t", NetNamespace.CURRENT))
                .isEqualTo("creating a TAP needs CAP_NET_ADMIN (run as root or grant the capability)");
        assertThat(TapDevice.explainOpen(Errno.ENOENT)).contains("/dev/net/tun is missing").contains("modprobe tun");
        assertThatThrownBy(() -> TapDevice.create("bad/name", NetNamespace.CURRENT, false))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> NetNamespace.named("../etc")).isInstanceOf(IllegalArgumentException.class);
    }
}
