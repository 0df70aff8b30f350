package dev.jvbus.app.fleet;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.app.TestDirs;
import dev.jvbus.connector.vhostuser.realclients.GuestImage;
import dev.jvbus.connector.vhostuser.realclients.ProcessConsole;
import dev.jvbus.connector.vhostuser.realclients.QemuGuest;
import dev.jvbus.connector.vhostuser.realclients.QemuMonitor;
import dev.jvbus.connector.vhostuser.realclients.Tools;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;

/**
 * A real Linux guest moves between two real bus processes ({@link Fleet}: bus A and bus B, each in its
 * own network namespace with its own data directory and API credentials) by QEMU's own live
 * migration: QEMU 1 runs the guest on a vhost-user virtio-net device of bus A, QEMU 2 waits with
 * {@code -incoming} on the same device restored on bus B, and the guest pings host A's kernel on the
 * fleet's L2 segment and receives a paced TCP stream from it throughout.
 *
 * <p>The order, and who carries which state:
 * <ol>
 *   <li>Snapshot on A (the device keeps running; its pause is a few ms, taken while the guest is idle),
 *       then restore on B with {@code overrides.vhostUser.socket}, <em>before</em> QEMU migrates. QEMU 2
 *       connects to its vhost-user back-end when it starts, and it must be listening with
 *       {@code -incoming} before QEMU 1 is told to {@code migrate}: so B's device and socket exist first,
 *       just as {@code QemuMigrationTest} (one bus) makes device 2 before starting its destination. The
 *       restore carries what the bus owns and QEMU does not: the device's identity (type, devid), its
 *       MAC and network, its operator limit and config, and the negotiated features, which B checks
 *       against its own offer and limit and imposes. A B that cannot take them refuses here, while
 *       the guest still runs on A, instead of QEMU 2 failing to load the guest after QEMU 1 stopped it.</li>
 *   <li>The ring positions come from QEMU, not from our snapshot: our snapshot's were stale as soon as A
 *       ran on. At switch-over QEMU 1 stops A's rings with GET_VRING_BASE (the next index each would
 *       consume), carries them in its migration stream, and QEMU 2 starts B's device with SET_FEATURES
 *       (the same features the restore imposed: the session renegotiates them on the restored device)
 *       and SET_VRING_BASE with those indices, which is vhost-user's own hand-over. So B goes live only
 *       after A stopped: QEMU sends the last state after stopping the source, and the destination starts
 *       its devices after loading it. Until then B's restored device waits paused, its status restored
 *       but no ring running. The operator's resume on B (what the restore's plan asks for, and what
 *       MigrationService's start-target step does) is started before QEMU migrates: it waits for the
 *       driver to share memory and doorbells again, which QEMU 2 does at the switch-over, so it adds no
 *       downtime.</li>
 *   <li>Only once QEMU reports the migration completed does A's device go (QEMU 1 quits, the device is
 *       free, the operator unplugs it): a migration that fails resumes the guest on QEMU 1, which needs
 *       A's device still there.</li>
 * </ol>
 * "Live" below is "a ring runs" (the device's queues as the API shows them), sampled on both buses
 * while QEMU migrates: never on both at once.
 *
 * <p>Skipped, naming what is missing, without QEMU, the guest image, or root with iproute2 and
 * /dev/net/tun (the namespaces).
 */
@Tag("real-client")
@Timeout(value = 15, unit = TimeUnit.MINUTES)   // a hang guard; every wait below has its own bound
class QemuTwoBusMigrationTest {
    static final String MAC = "52:54:00:16:00:0a";
    /**
     * A /24 of its own, derived as every fleet's is ({@link Fleet#freeSubnet}: free in the root namespace now, apart
     * from this run's other fleet): it never meets another fleet up at the same time on this machine.
     */
    static final String NET = Fleet.freeSubnet();
    static final String GUEST_IP = NET + "10/24";
    static final String PEER = NET + "1";   // host A's kernel (its bridge): on B, the guest reaches it over the wire
    static final String DEVICES = "/api/v1/containers/" + BusNode.CONTAINER + "/devices";
    static final int PINGS = 100;
    static final int INTERVAL_MS = 200;
    static final int MIGRATE_AT_SEQ = 15;
    static final int CHUNKS = 40;            // the TCP stream: 40 chunks of 32 KiB, one every 0.5 s
    static final int CHUNK = 32 * 1024;
    static final Pattern REPLY = Pattern.compile("bytes from " + Pattern.quote(PEER) + ": seq=(\\d+) ");
    static final Pattern REPLIED = Pattern.compile("JVBUS-REPLIED ([0-9 ]*)");
    static final Pattern DUPS = Pattern.compile("JVBUS-DUPS (\\d+)");
    static final Pattern STREAM = Pattern.compile("JVBUS-STREAM bytes=\\s*(\\d+) sha256=([0-9a-f]+)");
    static final Pattern QEMU_DOWNTIME = Pattern.compile("(?m)^downtime: (\\d+) ms");
    static final Duration DRIVER_WAIT = Duration.ofMinutes(5);   // B's resume waits this long for QEMU 2 at most
    static final Pattern QEMU_TOTAL = Pattern.compile("(?m)^total time: (\\d+) ms");

    @TempDir Path tmp;

    @Test
    void qemuMigratesAGuestFromBusAToBusBWithItsDeviceStateAndItKeepsAnsweringPingsAndItsTcpStreamArrivesIntact() throws Exception {
        GuestImage.require();
        Tools.require(Tools.QEMU);
        Fleet.Hosts hosts = Fleet.hosts();
        Fleet fleet = null;
        try {
            hosts.assumeAvailable();
            fleet = Fleet.create(hosts, TestDirs.fresh("jvbus-qemu2bus"), System.out, NET);
            migrate(fleet);
        } finally {
            if (fleet != null) fleet.close();
            else hosts.close();
        }
    }

    private void migrate(Fleet fleet) throws Exception {
        FleetApi a = fleet.a.api, b = fleet.b.api;
        var plugged = a.post(DEVICES, "{\"type\":\"virtio-net\",\"network\":\"lan0\",\"mac\":\"" + MAC + "\"}");
        assertThat(plugged.status()).as(plugged.toString()).isEqualTo(201);
        long devid = plugged.json().path("devid").asLong();
        String device = DEVICES + "/" + devid;
        var exposed = a.post("/api/v1/exposures", "{\"kind\":\"vhost-user\",\"container\":\"" + BusNode.CONTAINER + "\",\"devid\":" + devid + "}");
        assertThat(exposed.status()).as(exposed.toString()).isEqualTo(201);
        Path socketA = Path.of(exposed.json().path("path").asString());
        Path socketB = fleet.b.dir.resolve("run").resolve("guest-" + devid + ".vhost-user.sock");
        Path migration = tmp.resolve("migration.sock");
        Path mon1 = tmp.resolve("mon1.sock"), mon2 = tmp.resolve("mon2.sock");

        // The stream host A's kernel serves, paced over the migration, and its digest.
        byte[] data = new byte[CHUNKS * CHUNK];
        new Random(20261201).nextBytes(data);
        Path dataFile = Files.write(tmp.resolve("stream.bin"), data);
        String sentSha = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(data));
        Path serve = Files.writeString(tmp.resolve("serve.sh"), "#!/bin/sh\ni=0; while [ $i -lt " + CHUNKS + " ]; do dd if=" + dataFile
                + " bs=" + CHUNK + " skip=$i count=1 2>/dev/null; sleep 0.5; i=$((i+1)); done\n");
        serve.toFile().setExecutable(true);
        // The guest's work, sent to its console once both buses are ready: the stream and the pings run
        // together; at the end, its own list of replied sequence numbers (a console line may be cut in two at
        // the switch-over, a list printed afterwards is not), the stream's length and SHA-256.
        String work = """
                nc %1$s 5001 < /dev/null > /tmp/recv & nc=$!
                ping -i %2$s -c %3$d -W 2 %1$s 2>&1 | tee /tmp/p
                wait $nc
                echo "JVBUS-STREAM bytes=$(wc -c < /tmp/recv) sha256=$(sha256sum < /tmp/recv | cut -d' ' -f1)"
                echo "JVBUS-REPLIED $(grep -v DUP /tmp/p | sed -n 's/.* seq=\\([0-9]*\\) .*/\\1/p' | tr '\\n' ' ')"
                echo "JVBUS-DUPS $(grep -c DUP /tmp/p)"
                sent=$(sed -n 's/^\\([0-9]*\\) packets transmitted.*/\\1/p' /tmp/p)
                recv=$(sed -n 's/.* \\([0-9]*\\) packets received.*/\\1/p' /tmp/p)
                echo "JVBUS-PING sent=${sent:-0} received=${recv:-0}"
                """.formatted(PEER, String.valueOf(INTERVAL_MS / 1000.0), PINGS);
        String workLine = "echo " + Base64.getEncoder().encodeToString(work.getBytes(StandardCharsets.UTF_8)) + " | base64 -d > /tmp/w.sh; sh /tmp/w.sh";

        try (ProcessConsole server = ProcessConsole.start("qemu2bus-stream",
                     List.of("ip", "netns", "exec", fleet.a.namespace, "busybox", "nc", "-l", "-p", "5001", "-e", serve.toString()),
                     Duration.ofMinutes(10), Path.of("target", "real-clients", "qemu2bus-stream.log"));
             QemuGuest src = guest("qemu2bus-src", socketA).qemuArgs(QemuMonitor.qemuArgs(mon1)).start();
             QemuMonitor srcMon = QemuMonitor.connect(mon1, Duration.ofSeconds(60))) {
            assertThat(src.awaitLine(QemuGuest.CARRIER, QemuGuest.BOOT_WAIT).group(1)).as("carrier on bus A's device").isEqualTo("up");
            src.awaitLine(QemuGuest.READY, QemuGuest.STEP_WAIT);
            JsonNode onA = a.get(device).json();
            assertThat(live(onA)).as("the guest's driver runs A's device: " + onA).isTrue();

            // ---- the device's state to B, ahead of QEMU (see the class comment) ----
            JsonNode snapshot = a.operation(a.post(device + "/snapshot", null));
            assertThat(snapshot.path("state").asString()).as(snapshot.toString()).isEqualTo("succeeded");
            JsonNode doc = snapshot.path("result");
            assertThat(live(a.get(device).json())).as("A's device runs on after its snapshot").isTrue();
            JsonNode restored = b.operation(b.post("/api/v1/containers/" + BusNode.CONTAINER + "/restore",
                    "{\"snapshot\":" + doc + ",\"overrides\":{\"vhostUser\":{\"socket\":\"" + socketB + "\"}}}"));
            assertThat(restored.path("state").asString()).as(restored.toString()).isEqualTo("succeeded");
            JsonNode onB = b.get(device).json();
            assertThat(onB.path("features").path("negotiated")).as("A's negotiated features, imposed on B")
                    .isEqualTo(onA.path("features").path("negotiated"));
            assertThat(onB.path("parameters").path("mac").asString()).as("the MAC the guest knows").isEqualTo(MAC);
            assertThat(live(onB)).as("B's restored device waits, no ring running: " + onB).isFalse();

            try (QemuGuest dst = guest("qemu2bus-dst", socketB).qemuArgs("-incoming", "unix:" + migration).qemuArgs(QemuMonitor.qemuArgs(mon2)).start();
                 QemuMonitor dstMon = QemuMonitor.connect(mon2, Duration.ofSeconds(60))) {
                FleetApi.await(() -> sessions(b.get(device).json()) == 1, "QEMU 2 connects to B's device", 120);
                assertThat(dstMon.command("info status")).as("destination waits for the migration").contains("inmigrate");
                var resume = b.post(device + "/resume?driver-timeout=" + DRIVER_WAIT.toSeconds(), null);
                assertThat(resume.status()).as(resume.toString()).isEqualTo(202);
                String resumeOp = resume.json().path("id").asString();
                JsonNode waiting = b.get("/api/v1/operations/" + resumeOp).json();
                assertThat(waiting.path("state").asString()).as("B's resume waits for QEMU 2 to start the rings: " + waiting).isEqualTo("running");
                assertThat(live(b.get(device).json())).as("B's device still waits").isFalse();

                int srcMark = src.console().lineCount();
                src.console().send(workLine);
                src.console().awaitLine(srcMark, Pattern.compile("seq=" + MIGRATE_AT_SEQ + " "), QemuGuest.STEP_WAIT);

                // ---- QEMU migrates; both buses sampled meanwhile ----
                try (Sampler sampler = new Sampler(a, b, device)) {
                    long t0 = System.nanoTime();
                    String r = srcMon.command("migrate -d unix:" + migration);
                    assertThat(r).as("migrate accepted").doesNotContainIgnoringCase("error");
                    String info;
                    long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(3);
                    while (true) {
                        info = srcMon.command("info migrate");
                        if (info.contains("Migration status: completed") || info.contains("Migration status: failed")
                                || info.contains("Migration status: cancelled") || System.nanoTime() > deadline) break;
                        Thread.sleep(100);
                    }
                    long migrateMs = (System.nanoTime() - t0) / 1_000_000;
                    System.out.println("[qemu2bus] info migrate after " + migrateMs + " ms:\n" + info);
                    assertThat(info).as("migration completed; source console:\n" + src.console().tail(30) + "\ndestination console:\n"
                            + dst.console().tail(30)).contains("Migration status: completed");
                    FleetApi.await(() -> live(b.get(device).json()), "B's device runs (QEMU 2 started it)", 60);
                    assertThat(dstMon.command("info status")).as("destination runs").contains("running");
                    sampler.awaitSamplesAfterSwitch();
                    sampler.close();
                    Sampler.Window w = sampler.window();
                    System.out.printf("[qemu2bus] %d samples of both buses; A's rings stopped at +%d ms, B's started at +%d ms"
                                    + " (A stopped to B live: %d ms, within the sampling step of %d ms); QEMU downtime %s ms, total %s ms%n",
                            sampler.samples.size(), (w.aStopped() - t0) / 1_000_000, (w.bStarted() - t0) / 1_000_000,
                            (w.bStarted() - w.aStopped()) / 1_000_000, w.step() / 1_000_000, group(QEMU_DOWNTIME, info), group(QEMU_TOTAL, info));
                    assertThat(sampler.both()).as("samples where the device ran on both buses at once").isEmpty();
                    assertThat(w.bStarted()).as("B's rings started after A's stopped").isGreaterThanOrEqualTo(w.aStopped());
                }
                JsonNode resumed = b.awaitEnd(resumeOp);
                assertThat(resumed.path("state").asString()).as("B's resume ends once QEMU 2 started the device: " + resumed).isEqualTo("succeeded");

                // ---- A lets go: QEMU 1 quits, its device is free, the operator unplugs it ----
                srcMon.quit();
                assertThat(src.waitForExit(QemuGuest.STEP_WAIT)).as("QEMU 1 exits after quit").isPresent();
                FleetApi.await(() -> sessions(a.get(device).json()) == 0, "A's device is free once QEMU 1 is gone", 60);
                JsonNode idle = a.get(device).json();
                assertThat(live(idle)).as("A's device idle: " + idle).isFalse();
                assertThat(idle.path("status").size()).as("A's device reset when its front-end left").isZero();
                assertThat(a.delete(device).status()).isEqualTo(204);
                assertThat(a.get(device).problemType()).as("gone from A").isEqualTo("no-such-device");

                // ---- the guest, now on B, finishes ----
                Matcher ping;
                try {
                    ping = dst.awaitLine(QemuGuest.PING, QemuGuest.STEP_WAIT);
                } catch (AssertionError e) {
                    // The hand-over's numbers from both buses, in the failure itself: CI keeps nothing else of a run.
                    throw new AssertionError(e.getMessage() + "\nthe rings' hand-over as both buses logged it:\n" + handOver(fleet), e);
                }
                Matcher stream = dst.awaitLine(STREAM, Duration.ZERO);
                int dups = Integer.parseInt(dst.awaitLine(DUPS, Duration.ZERO).group(1));
                TreeSet<Integer> replied = new TreeSet<>();
                for (String s : dst.awaitLine(REPLIED, Duration.ZERO).group(1).trim().split(" +")) if (!s.isEmpty()) replied.add(Integer.parseInt(s));
                int sent = Integer.parseInt(ping.group(1));
                int received = Integer.parseInt(ping.group(2));
                List<Integer> lost = new ArrayList<>();
                for (int s = 0; s < sent; s++) if (!replied.contains(s)) lost.add(s);
                // The switch-over as the ping saw it: the last reply read from QEMU 1's console, the first from QEMU 2's.
                Reply lastOnA = last(src.console(), srcMark), firstOnB = first(dst.console());
                long gapMs = (firstOnB.nanos() - lastOnA.nanos()) / 1_000_000;
                long allowed = ceilDiv(gapMs, INTERVAL_MS) + 1;
                JsonNode live = b.get(device).json();
                System.out.printf("[qemu2bus] ping sent=%d received=%d lost=%d %s dups=%d; last reply through A seq=%d, first through B seq=%d,"
                                + " %d ms apart (allows %d lost); stream %s bytes sha256 %s (sent %d, %s); B's queues %s%n",
                        sent, received, lost.size(), lost, dups, lastOnA.seq(), firstOnB.seq(), gapMs, allowed, stream.group(1), stream.group(2),
                        data.length, sentSha, queues(live));
                assertThat(sent).as("echo requests sent").isEqualTo(PINGS);
                assertThat(replied).as("the guest's own list agrees with its count").hasSize(received);
                assertThat(dups).as("no duplicated replies").isZero();
                assertThat(lastOnA.seq()).as("replies came through A before the migration").isGreaterThanOrEqualTo(MIGRATE_AT_SEQ);
                assertThat(firstOnB.seq()).as("and through B after it").isGreaterThan(lastOnA.seq());
                assertThat(lost).as("lost only at the switch-over, between the last reply through A and the first through B")
                        .allMatch(s -> s > lastOnA.seq() && s < firstOnB.seq());
                assertThat((long) lost.size()).as("lost no more than the %d ms without replies allows", gapMs).isLessThanOrEqualTo(allowed);
                assertThat(replied.last()).as("the guest pinged on through B to the end").isEqualTo(PINGS - 1);
                assertThat(Long.parseLong(stream.group(1))).as("TCP stream length across the migration").isEqualTo(data.length);
                assertThat(stream.group(2)).as("TCP stream content across the migration (SHA-256)").isEqualTo(sentSha);
                assertThat(live(live)).as("B's device runs: " + live).isTrue();
                assertThat(live.path("features").path("negotiated")).as("the guest's features, unchanged").isEqualTo(onA.path("features").path("negotiated"));
                assertThat(live.path("queues").valueStream().mapToLong(q -> q.path("counters").path("buffers").asLong()).sum())
                        .as("the guest's traffic went through B's device").isGreaterThanOrEqualTo(PINGS - MIGRATE_AT_SEQ);
                // The hand-over in numbers: each ring carries on at B from the base A stopped it at, and B finds in memory
                // the used index A left there (QEMU carried the one, its memory the other).
                String handOver = handOver(fleet);
                for (int ring = 0; ring < 2; ring++) {
                    Matcher stopped = lastMatch(handOver, Pattern.compile("(?m)^A: .*GET_VRING_BASE: ring " + ring + " stopped at (\\d+) \\(used index (\\d+), 0 in flight\\)"));
                    Matcher goesOn = firstMatch(handOver, Pattern.compile("(?m)^B: .*ring " + ring + " carries on from base (\\d+) \\(used index (\\d+) in memory, 0 in flight\\)"));
                    assertThat(stopped).as("A stopped ring %d with nothing in flight:%n%s", ring, handOver).isNotNull();
                    assertThat(goesOn).as("B carried ring %d on from a base:%n%s", ring, handOver).isNotNull();
                    assertThat(goesOn.group(1)).as("ring %d: B's base is the one A answered%n%s", ring, handOver).isEqualTo(stopped.group(1));
                    assertThat(goesOn.group(2)).as("ring %d: B finds the used index A left%n%s", ring, handOver).isEqualTo(stopped.group(2));
                }
                System.out.print("[qemu2bus] the rings' hand-over:\n" + handOver);
                assertThat(dst.powerOff(QemuGuest.STEP_WAIT)).as("the guest powers off on B").hasValue(0);
            }
        }
    }

    private static Matcher firstMatch(String text, Pattern p) {
        Matcher m = p.matcher(text);
        return m.find() ? m : null;
    }

    /** The last match (A's last stop is the switch-over's: a guest's boot may stop and start the rings before). */
    private static Matcher lastMatch(String text, Pattern p) {
        Matcher m = p.matcher(text);
        int last = -1;
        while (m.find()) last = m.start();
        return last >= 0 && m.find(last) ? m : null;
    }

    /** Each bus's lines on where a ring stopped (GET_VRING_BASE) and where one carried on from a base. */
    private static String handOver(Fleet fleet) {
        StringBuilder out = new StringBuilder();
        for (BusNode bus : List.of(fleet.a, fleet.b)) {
            try (var lines = Files.lines(bus.logFile())) {
                lines.filter(l -> l.contains("GET_VRING_BASE:") || l.contains("carries on from base"))
                        .forEach(l -> out.append(bus.name()).append(": ").append(l.substring(Math.max(0, l.indexOf("vhost-user ")))).append('\n'));
            } catch (java.io.IOException | java.io.UncheckedIOException e) {
                out.append(bus.name()).append(": its log cannot be read: ").append(e.getMessage()).append('\n');
            }
        }
        return out.toString();
    }

    /** A guest on a vhost-user socket of the fleet, in the {@code ready} step: it takes its work on the console. */
    private static QemuGuest.Builder guest(String name, Path socket) {
        return QemuGuest.builder().name(name).vhostUser(socket).mac(MAC).ip(GUEST_IP).peer(PEER).steps("carrier", "ready")
                .timeout(Duration.ofMinutes(12));
    }

    /** A device is live when one of its rings runs: a restored device's status says DRIVER_OK before any ring does. */
    static boolean live(JsonNode device) {
        return device != null && device.path("queues").valueStream().anyMatch(q -> q.path("running").asBoolean());
    }

    private static int sessions(JsonNode device) {
        return device == null ? 0 : device.path("exposures").valueStream().mapToInt(e -> e.path("sessions").size()).sum();
    }

    private static String queues(JsonNode device) {
        return device.path("queues").valueStream().map(q -> q.path("name").asString() + "=" + q.path("counters").path("buffers").asLong()).toList().toString();
    }

    private static String group(Pattern p, String text) {
        Matcher m = p.matcher(text);
        return m.find() ? m.group(1) : "?";
    }

    private static long ceilDiv(long a, long b) { return (a + b - 1) / b; }

    /** A reply line on a console: its sequence number and when it was read. */
    record Reply(int seq, long nanos) { }

    private static Reply last(ProcessConsole console, int from) {
        List<String> lines = console.lines();
        for (int i = lines.size() - 1; i >= from; i--) {
            Matcher m = REPLY.matcher(lines.get(i));
            if (m.find()) return new Reply(Integer.parseInt(m.group(1)), console.nanosAtLine(i));
        }
        throw new AssertionError("no reply on " + console.name() + ":\n" + console.tail(30));
    }

    private static Reply first(ProcessConsole console) {
        List<String> lines = console.lines();
        for (int i = 0; i < lines.size(); i++) {
            Matcher m = REPLY.matcher(lines.get(i));
            if (m.find()) return new Reply(Integer.parseInt(m.group(1)), console.nanosAtLine(i));
        }
        throw new AssertionError("no reply on " + console.name() + ":\n" + console.tail(30));
    }

    /**
     * Reads the device on B, then on A, over and over, until closed. B's device starts once and runs on; A's
     * runs, then stops for good (a completed migration never restarts it). So a sample that finds B running
     * and then A still running shows a moment when both ran; without such a moment, no sample can show both.
     */
    static final class Sampler implements AutoCloseable {
        record Sample(long nanos, boolean b, boolean a) { }

        /** When A's rings were first seen stopped and B's first seen running, and the largest step between samples. */
        record Window(long aStopped, long bStarted, long step) { }

        final List<Sample> samples = new ArrayList<>();
        private final Thread thread;
        private volatile boolean stop;

        /** Takes the first sample at once (before QEMU is told to migrate), the rest on a thread of its own. */
        Sampler(FleetApi a, FleetApi b, String device) {
            FleetApi.await(() -> sample(a, b, device), "a first sample of both buses", 60);
            thread = Thread.ofPlatform().daemon().name("qemu2bus-sampler").start(() -> {
                while (!stop) sample(a, b, device);
            });
        }

        /** B first, then A (see above); a read that failed (a busy bus timing out) is no sample. */
        private boolean sample(FleetApi a, FleetApi b, String device) {
            FleetApi.Reply onB = b.get(device);
            FleetApi.Reply onA = a.get(device);
            if (onB.status() != 200 || onA.status() != 200) return false;
            synchronized (samples) { samples.add(new Sample(System.nanoTime(), live(onB.json()), live(onA.json()))); }
            return true;
        }

        /** Waits for a few samples after B was seen running, so the window has an end. */
        void awaitSamplesAfterSwitch() {
            FleetApi.await(() -> {
                synchronized (samples) {
                    return samples.stream().filter(Sample::b).count() >= 3;
                }
            }, "the sampler sees B's device running", 60);
        }

        List<Sample> both() {
            synchronized (samples) { return samples.stream().filter(s -> s.a() && s.b()).toList(); }
        }

        Window window() {
            synchronized (samples) {
                long aStopped = samples.stream().filter(s -> !s.a()).mapToLong(Sample::nanos).findFirst().orElseThrow(() -> new AssertionError("A never seen stopped: " + samples));
                long bStarted = samples.stream().filter(Sample::b).mapToLong(Sample::nanos).findFirst().orElseThrow(() -> new AssertionError("B never seen running"));
                long step = 0;
                for (int i = 1; i < samples.size(); i++) step = Math.max(step, samples.get(i).nanos() - samples.get(i - 1).nanos());
                assertThat(samples.getFirst().a()).as("A's device ran when QEMU was told to migrate").isTrue();
                return new Window(aStopped, bStarted, step);
            }
        }

        @Override
        public void close() throws InterruptedException {
            stop = true;
            thread.join(30_000);
        }
    }
}
