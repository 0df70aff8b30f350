package dev.jvbus.connector.kvm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.sys.Kvm;
import dev.jvbus.core.testing.TestNetns;
import dev.jvbus.model.virtionet.VirtioNetModel;
import dev.jvbus.net.Networks;
import dev.jvbus.net.TapPort;
import java.io.IOException;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The kernel pings a micro-VM: {@code ping} in a network namespace, through a TAP port on the bus's switch,
 * to the bundled guest's responder driving a virtio-net device by hypercalls. Every packet on that path is
 * real: the kernel's ARP and ICMP, the switch, the device's split rings in the micro-VM's memory, the
 * guest's replies. Skipped, with the reason, without /dev/kvm or without the rights to make a namespace.
 */
class MicroVmResponderTest {
    static final String IFNAME = "jvbkvm0";

    // Per test, not @BeforeAll: a class-level assumption is reported by Surefire as a class that ran no test, not
    // as skipped tests, and its message (what is missing) shows nowhere.
    @BeforeEach
    void needKvm() {
        Optional<String> why = Kvm.unavailable();
        assumeTrue(why.isEmpty(), () -> "skipped: /dev/kvm is not usable here: " + why.orElse(""));
    }

    @Test
    void theKernelPingsAMicroVmThroughTheSwitchAndGetsEveryReply() throws Exception {
        Container box = Bus.withDiscoveredModels().createContainer("kvm-ping");
        Device nic = box.addDevice(VirtioNetModel.TYPE, -1L, Map.of("mac", "02:00:00:00:19:02"));
        try (TestNetns ns = TestNetns.createOrSkip();
             TapPort tap = TapPort.create(Networks.of(box).getOrCreate("default"), IFNAME, ns.namespace(), false);
             MicroVm vm = MicroVm.create(box, GuestProgram.vbusGuest(), 4L << 20)) {
            ns.address(IFNAME, "192.0.2.1/24");
            Responder responder = new Responder(nic.devid().unsigned(), (Inet4Address) InetAddress.getByName("192.0.2.2"));
            CompletableFuture<RunReport> run = new CompletableFuture<>();
            Thread.ofPlatform().daemon().name("responder").start(() -> run.complete(responder.run(vm, Duration.ofMinutes(5))));

            ProcessBuilder pb = new ProcessBuilder(ns.wrap(List.of("ping", "-c", "5", "-i", "0.2", "-w", "60", "192.0.2.2"))).redirectErrorStream(true);
            Process ping;
            try {
                ping = pb.start();
            } catch (IOException e) {
                assumeTrue(false, "skipped: cannot run ping (install iputils-ping): " + e.getMessage());
                return;
            }
            String out = new String(ping.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertThat(ping.waitFor(90, TimeUnit.SECONDS)).isTrue();
            assertThat(run).as("the responder still runs: " + (run.isDone() ? run.get().describe() : "")).isNotDone();
            assertThat(ping.exitValue()).as(out).isZero();
            // With -w, ping keeps sending until 5 replies came; the first ones wait for ARP, so more than 5 may come back.
            java.util.regex.Matcher received = java.util.regex.Pattern.compile("(\\d+) received").matcher(out);
            assertThat(received.find()).as(out).isTrue();
            assertThat(Integer.parseInt(received.group(1))).as(out).isGreaterThanOrEqualTo(5);
            out.lines().filter(l -> l.startsWith("rtt")).forEach(l -> System.out.println("kernel -> micro-VM ping through the switch: " + l));
            assertThat(ns.ip("neigh", "show", "dev", IFNAME)).as("the kernel learnt the micro-VM's MAC by ARP")
                    .contains("192.0.2.2").contains("02:00:00:00:19:02");

            Responder.Counters c = Responder.counters(vm);
            assertThat(c.echoReplies()).as(c.toString()).isGreaterThanOrEqualTo(5);
            assertThat(c.arpReplies()).as(c.toString()).isPositive();
            assertThat(vm.waits()).as("it slept in WAIT between pings").isPositive();
            vm.close();   // the operator's stop
            RunReport r = run.get(60, TimeUnit.SECONDS);
            assertThat(r).as(r.describe()).isInstanceOf(RunReport.TimedOut.class);
        }
        assertThat(nic.holder()).as("released when the micro-VM stopped").isEmpty();
    }
}
