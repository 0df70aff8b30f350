package dev.jvbus.connector.vhostuser;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Fault injection (issue 10): a front-end closes the eventfds it handed over (a ring's kick and call) while
 * its device runs. The bus holds its own copies (every fd a peer hands over is duplicated into one owner), so
 * nothing is closed under the bus: the device neither faults nor spins on a dead doorbell, the other device
 * streams on, and the front-end's session keeps serving.
 */
class PeerClosedEventFdsTest extends TwoDeviceStream {
    /** A's tx queue on a thread of its own, whose CPU time this test measures (a poll group's thread serves B too). */
    @Override
    Map<String, String> paramsA() {
        return Map.of("mac", dev.jvbus.net.MacAddress.toString(MAC_A), "poll", "own");
    }

    @Test
    void aFrontEndClosingItsKickAndCallFdsNeitherBreaksNorSpinsTheDeviceAndTheOtherGoesOn() throws Exception {
        guestA.sendLimit = 300;
        await(() -> guestB.received == 300, "A's frames reach B");
        // The front-end closes its copies of its tx kick and both calls (its driver polls; the bus holds duplicates).
        guestA.txKick.close();
        guestA.txCall.close();
        guestA.rxCall.close();

        Thread worker = Thread.getAllStackTraces().keySet().stream()
                .filter(t -> t.getName().startsWith(container.name() + "/" + a.devid().unsigned() + ":virtio-net-tx")).findFirst().orElseThrow();
        ThreadMXBean cpu = ManagementFactory.getThreadMXBean();
        long before = cpu.getThreadCpuTime(worker.threadId());
        long got = guestA.received;
        guestB.sendLimit = guestB.sent + 500;   // B streams into A's rx meanwhile: A's device signals a call the peer closed
        await(() -> guestA.received >= got + 500, "A receives B's 500 further frames");
        Thread.sleep(1000);                     // an idle second for A's tx worker (not a wait for a result: its CPU is measured)
        long spent = cpu.getThreadCpuTime(worker.threadId()) - before;

        assertThat(spent).as("A's tx worker sleeps on its doorbell rather than spinning (ns of CPU in over a second)")
                .isLessThan(300_000_000L);
        assertThat(a.needsResetReason()).isEmpty();
        assertThat(b.needsResetReason()).isEmpty();
        assertThat(a.status().isLive()).isTrue();
        fe.send(dev.jvbus.connector.vhostuser.protocol.Request.GET_FEATURES);
        assertThat(fe.replyU64(dev.jvbus.connector.vhostuser.protocol.Request.GET_FEATURES)).as("the session still answers").isNotZero();
        assertThat(guestB.failure).isNull();
        assertThat(guestA.failure).isNull();
        assertThat(guestA.gap).as("in order, none lost").isNull();
    }
}
