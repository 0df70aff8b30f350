package dev.jvbus.bench;

import dev.jvbus.bench.BenchOptions.Kind;
import dev.jvbus.connector.kvm.GuestProgram;
import dev.jvbus.connector.kvm.HypercallAbi;
import dev.jvbus.connector.kvm.KickWakeProbe;
import dev.jvbus.connector.kvm.MicroVm;
import dev.jvbus.connector.kvm.RunReport;
import dev.jvbus.connector.kvm.VenetRoundTrip;
import dev.jvbus.connector.kvm.VirtioNetRoundTrip;
import dev.jvbus.connector.shm.server.ShmConnector;
import dev.jvbus.core.bus.Bus;
import dev.jvbus.core.bus.Container;
import dev.jvbus.core.bus.Device;
import dev.jvbus.core.sys.Kvm;
import dev.jvbus.model.venet.VenetModel;
import dev.jvbus.model.virtionet.VirtioNetModel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;

/**
 * {@code ./jvbus bench-kvm}: what the KVM connector costs on this host, and frames per second through a venet
 * device for the bundled guest driver in a micro-VM against the same driver logic run in this JVM over the shm
 * connector ({@link ShmVenetDriver}), measured back to back in alternating rounds (the order flips every round,
 * so a change in the machine's load hits both). The far end is one {@link VenetEchoPeer} for all runs.
 * Not a test: nothing is asserted on time. Prints medians over the rounds, min..max, and the ratios.
 *
 * <p>Options: {@code --rounds R} (5), {@code --frames N} (50000 per throughput run), {@code --window W} (32).
 */
public final class KvmBench {
    private static final long MEMORY = 4L << 20;
    private static final Duration TIMEOUT = Duration.ofMinutes(5);
    private static final long PATIENCE = 60_000_000_000L;
    private static final String GUEST_MAC = "02:00:00:00:17:01", PEER_MAC = "02:00:00:00:17:02";

    private KvmBench() {}

    public static void main(String[] args) throws Exception {
        BenchOptions opts = BenchOptions.parseOrExit("usage: bench-kvm [--rounds R] [--frames N] [--window W]",
                Map.of("--rounds", Kind.INT, "--frames", Kind.INT, "--window", Kind.INT), args);
        int rounds = opts.intValue("--rounds", 5), frames = opts.intValue("--frames", 50_000), window = opts.intValue("--window", 32);
        Optional<String> why = Kvm.unavailable();
        if (why.isPresent()) {
            System.out.println("bench-kvm: skipped, /dev/kvm is not usable here: " + why.get());
            return;
        }
        Path dir = Files.createTempDirectory("jvbus-bench-kvm");
        Bus bus = Bus.withDiscoveredModels();
        Container box = bus.createContainer("bench-kvm");
        Device guestSide = box.addDevice(VenetModel.TYPE, -1L, Map.of("mac", GUEST_MAC));
        Device peerSide = box.addDevice(VenetModel.TYPE, -1L, Map.of("mac", PEER_MAC));
        try (ShmConnector shm = new ShmConnector(bus, dir.resolve("run")); VenetEchoPeer peer = new VenetEchoPeer(peerSide)) {
            Path socket = shm.expose(box.name()).path();
            System.out.printf(Locale.ROOT, "bench-kvm: %d rounds; medians, [min..max]%n", rounds);

            double[] ping = new double[rounds], kick = new double[rounds];
            for (int r = 0; r < rounds; r++) {
                int n = 20_000;
                ping[r] = perOp(guest(box, GuestProgram.Mode.PING, n), n + 1);
                int kicks = 100_000;
                kick[r] = perOp(guest(box, GuestProgram.Mode.DOORBELL, guestSide.devid().unsigned() | (long) kicks << 32), kicks);
            }
            line("hypercall round trip (PIO exit from CPL3, NEGOTIATE decoded)", ping, "us");
            line("ioeventfd doorbell kick, no exit to the VMM (guest side cost)", kick, "us");

            // Kick to wake-up on its own: guest kick -> a host thread asleep in epoll on the kick eventfd -> its answer.
            double[] wakeKvm = new double[rounds], wakeHost = new double[rounds];
            for (int r = 0; r < rounds; r++) {
                for (int side = 0; side < 2; side++) {
                    if ((side == 0) == (r % 2 == 0)) wakeKvm[r] = KickWakeProbe.microVm(box, guestSide, 5_000, TIMEOUT) / 1000.0;
                    else wakeHost[r] = KickWakeProbe.hostBaseline(5_000) / 1000.0;
                }
            }
            line("kick to host-thread wake-up and answer, micro-VM guest (ioeventfd)", wakeKvm, "us");
            line("kick to host-thread wake-up and answer, two host threads (eventfd)", wakeHost, "us");
            ratio("kick to wake-up kvm / host", wakeKvm, wakeHost);

            // One frame in flight: guest kick -> venet tx worker wake-up -> switch -> peer -> echo -> guest rx.
            int pings = 2_000;
            double[] kvmRtt = new double[rounds], waitRtt = new double[rounds], shmRtt = new double[rounds];
            for (int r = 0; r < rounds; r++) {
                kvmRtt[r] = perOp(venet(box, guestSide, peer, pings, 64, 1, 0), pings);
                waitRtt[r] = perOp(venet(box, guestSide, peer, pings, 64, 1, HypercallAbi.MAX_WAIT_MICROS), pings);
                shmRtt[r] = ShmVenetDriver.run(socket, guestSide.devid(), peer.mac(), pings, 64, 1).nanos() / 1000.0 / pings;
            }
            line("venet ping-pong 64 B, micro-VM guest spinning", kvmRtt, "us");
            line("venet ping-pong 64 B, micro-VM guest sleeping in WAIT", waitRtt, "us");
            line("venet ping-pong 64 B, same driver over the shm connector", shmRtt, "us");
            ratio("ping-pong time kvm-spin / shm", kvmRtt, shmRtt);
            ratio("ping-pong time kvm-WAIT / kvm-spin", waitRtt, kvmRtt);

            for (int size : new int[] {64, 1500}) {
                double[] kvm = new double[rounds], viaShm = new double[rounds], kvmBells = new double[rounds], shmBells = new double[rounds];
                for (int r = 0; r < rounds; r++) {
                    for (int side = 0; side < 2; side++) {
                        if ((side == 0) == (r % 2 == 0)) {
                            RunReport run = venet(box, guestSide, peer, frames, size, window, 0);
                            kvm[r] = rate(run, frames);
                            kvmBells[r] = 1000.0 * VenetRoundTrip.Report.of(((RunReport.Exited) run).words()).txDoorbells() / frames;
                        } else {
                            ShmVenetDriver.Run run = ShmVenetDriver.run(socket, guestSide.devid(), peer.mac(), frames, size, window);
                            viaShm[r] = frames / (run.nanos() / 1e9) / 1000.0;
                            shmBells[r] = 1000.0 * run.doorbells() / frames;
                        }
                    }
                }
                double[] slept = new double[rounds], wakes = new double[rounds];
                for (int r = 0; r < rounds; r++) {
                    RunReport run = venet(box, guestSide, peer, frames, size, window, HypercallAbi.MAX_WAIT_MICROS);
                    slept[r] = rate(run, frames);
                    wakes[r] = 1000.0 * VenetRoundTrip.Report.of(((RunReport.Exited) run).words()).wakes() / frames;
                }
                line(String.format(Locale.ROOT, "frames/s guest->bus->guest %4d B, micro-VM", size), kvm, "k/s");
                line(String.format(Locale.ROOT, "frames/s guest->bus->guest %4d B, micro-VM idling in WAIT", size), slept, "k/s");
                line(String.format(Locale.ROOT, "device signals that woke the guest per 1000 frames %4d B", size), wakes, "");
                line(String.format(Locale.ROOT, "frames/s guest->bus->guest %4d B, shm connector", size), viaShm, "k/s");
                line(String.format(Locale.ROOT, "tx doorbells rung per 1000 frames %4d B, micro-VM", size), kvmBells, "");
                line(String.format(Locale.ROOT, "tx doorbells rung per 1000 frames %4d B, shm connector", size), shmBells, "");
                ratio(String.format(Locale.ROOT, "frames/s %4d B kvm / shm", size), kvm, viaShm);
            }
            peer.check();
        }
        virtioNet(rounds, frames, window);
    }

    /** The same exchange with the guest driving a virtio-net device over split rings (EVENT_IDX), the peer a venet echo. */
    private static void virtioNet(int rounds, int frames, int window) throws Exception {
        Container box = Bus.withDiscoveredModels().createContainer("bench-kvm-virtio-net");
        Device guestSide = box.addDevice(VirtioNetModel.TYPE, -1L, Map.of("mac", GUEST_MAC));
        Device peerSide = box.addDevice(VenetModel.TYPE, -1L, Map.of("mac", PEER_MAC));
        try (VenetEchoPeer peer = new VenetEchoPeer(peerSide)) {
            for (int size : new int[] {64, 1500}) {
                double[] rate = new double[rounds], bells = new double[rounds];
                for (int r = 0; r < rounds; r++) {
                    try (MicroVm vm = MicroVm.create(box, GuestProgram.vbusGuest(), MEMORY)) {
                        RunReport run = ok(new VirtioNetRoundTrip(guestSide.devid().unsigned(), peer.mac(), frames, size,
                                Math.min(window, VirtioNetRoundTrip.MAX_WINDOW), true, PATIENCE, 0).run(vm, TIMEOUT));
                        VirtioNetRoundTrip.Report report = VirtioNetRoundTrip.Report.of(((RunReport.Exited) run).words());
                        if (report.received() != frames) throw new IllegalStateException("the guest got " + report.received() + " of " + frames);
                        rate[r] = rate(run, frames);
                        bells[r] = 1000.0 * report.txDoorbells() / frames;
                    }
                }
                line(String.format(Locale.ROOT, "frames/s guest->bus->guest %4d B, micro-VM on virtio-net", size), rate, "k/s");
                line(String.format(Locale.ROOT, "tx doorbells rung per 1000 frames %4d B, virtio-net EVENT_IDX", size), bells, "");
            }
            peer.check();
        }
    }

    private static RunReport guest(Container box, GuestProgram.Mode mode, long arg) {
        try (MicroVm vm = MicroVm.create(box, GuestProgram.vbusGuest(), MEMORY)) {
            return ok(vm.run(mode, arg, TIMEOUT));
        }
    }

    private static RunReport venet(Container box, Device guestSide, VenetEchoPeer peer, int frames, int size, int window, long waitMicros) {
        try (MicroVm vm = MicroVm.create(box, GuestProgram.vbusGuest(), MEMORY)) {
            RunReport r = ok(new VenetRoundTrip(guestSide.devid().unsigned(), peer.mac(), frames, size, window, false, PATIENCE, waitMicros)
                    .run(vm, TIMEOUT));
            VenetRoundTrip.Report report = VenetRoundTrip.Report.of(((RunReport.Exited) r).words());
            if (report.received() != frames) throw new IllegalStateException("the guest got " + report.received() + " of " + frames);
            return r;
        }
    }

    private static RunReport ok(RunReport r) {
        if (!(r instanceof RunReport.Exited e) || e.code() != 0) throw new IllegalStateException("guest run failed: " + r.describe());
        return r;
    }

    private static double perOp(RunReport r, long ops) {
        return r.stats().elapsed().toNanos() / 1000.0 / ops;
    }

    private static double rate(RunReport r, long frames) {
        return frames / (r.stats().elapsed().toNanos() / 1e9) / 1000.0;
    }

    private static void line(String what, double[] xs, String unit) {
        double[] s = xs.clone();
        Arrays.sort(s);
        System.out.printf(Locale.ROOT, "  %-62s %10.1f %-4s [%.1f..%.1f]%n", what, Stats.median(xs), unit, s[0], s[s.length - 1]);
    }

    /** The median of the per-round ratios (each round's two sides ran back to back), its spread, and every round. */
    private static void ratio(String what, double[] a, double[] b) {
        double[] r = new double[a.length];
        List<String> per = new ArrayList<>();
        for (int i = 0; i < a.length; i++) {
            r[i] = a[i] / b[i];
            per.add(String.format(Locale.ROOT, "%.2f", r[i]));
        }
        double[] s = r.clone();
        Arrays.sort(s);
        System.out.printf(Locale.ROOT, "  %-62s %10.2fx [%.2f..%.2f] (per round: %s)%n", what, Stats.median(r), s[0], s[s.length - 1], per);
    }
}
