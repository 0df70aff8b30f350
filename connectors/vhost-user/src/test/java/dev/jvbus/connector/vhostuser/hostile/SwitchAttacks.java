package dev.jvbus.connector.vhostuser.hostile;

import static org.assertj.core.api.Assertions.assertThat;

import dev.jvbus.core.bus.Device;
import dev.jvbus.core.sys.PeerSideFds;
import dev.jvbus.net.DropReason;
import dev.jvbus.net.MacAddress;
import dev.jvbus.net.PortStats;
import dev.jvbus.net.RxGate;
import java.time.Duration;

/**
 * Attacks on the switch the pair shares (points 2 and 8): devices on network {@value Lan#NETWORK}
 * beside A and B that steal an address or stop taking frames. Their traffic goes to learned MACs of
 * attackers only (or is dropped at ingress), so none of it may reach A or B: the pair fails on a
 * stranger's frame, and the switch's counters for A and B must match the pair's exactly at the end.
 */
final class SwitchAttacks {
    /**
     * How long an operator's unplug may take even when the device's peer is wedged: the rx gate's own
     * bound ({@link RxGate#DEFAULT_BOUND}) twice over, and a busy machine's share.
     */
    static final Duration UNPLUG_BOUND = RxGate.DEFAULT_BOUND.multipliedBy(2).plusSeconds(30);
    static final long ENOUGH = 1000;   // frames an attacker gets through before the harness starts watching

    private SwitchAttacks() {}

    static Attack spoofing() {
        return Attack.now("8", "a device sending from A's MAC has every frame dropped as SPOOFED_SOURCE and A keeps its MAC and its traffic", lan -> {
            Device d = lan.addNet("thief");
            NetTenant thief = new NetTenant(lan, d, "thief", 0);
            Spray spray = Spray.start("spoofing A's MAC", i ->
                    thief.sendBlocking((i & 1) == 0 ? Lan.MAC_B : MacAddress.BROADCAST, Lan.MAC_A, 60 + (int) (i % 1400), i));
            try {
                Lan.await("the thief's frames are refused at ingress and counted",
                        () -> lan.stats(d).dropped(DropReason.SPOOFED_SOURCE) >= ENOUGH || !spray.running());
            } catch (AssertionError e) {
                end(spray, thief);
                throw e;
            }
            return () -> {
                try {
                    long n = spray.stop();
                    Lan.await("every spoofed frame counted on the thief's port", () -> lan.stats(d).dropped(DropReason.SPOOFED_SOURCE) == n);
                    PortStats ps = lan.stats(d);
                    System.out.printf("  %s: %d frames from A's MAC, drops %s%n", Lan.portName(d), n, ps.drops());
                    assertThat(ps.rxFrames()).as("frames of the thief's that entered the switch").isZero();
                    assertThat(ps.dropped()).as("the thief's drops are all SPOOFED_SOURCE").isEqualTo(n);
                    assertThat(lan.sw.macTable()).as("A's MAC stays on A's port")
                            .containsEntry(MacAddress.toString(Lan.MAC_A), Lan.portName(lan.a));
                } finally {
                    end(spray, thief);
                    lan.unplug(d, UNPLUG_BOUND);
                }
            };
        });
    }

    static Attack deafReceiver() {
        return Attack.now("2", "a receiver that never reposts its rx buffers costs its sender counted NO_RX_BUFFER drops, never a wait, and its unplug finishes", lan -> {
            Device dw = lan.addNet("deaf"), dt = lan.addNet("talker");
            NetTenant deaf = new NetTenant(lan, dw, "deaf", 16), talker = new NetTenant(lan, dt, "talker", 0);
            deaf.announce(lan);
            return talkTo(lan, deaf, talker, DropReason.NO_RX_BUFFER, () -> { });
        });
    }

    static Attack wedgedDoorbell() {
        return Attack.now("2", "a receiver that clears O_NONBLOCK on its call eventfd and fills the counter costs its sender counted drops, never a wait, and its unplug finishes", lan -> {
            Device dw = lan.addNet("wedged"), dt = lan.addNet("talker");
            NetTenant wedged = new NetTenant(lan, dw, "wedged", 64), talker = new NetTenant(lan, dt, "talker", 0);
            wedged.announce(lan);
            wedged.rx.driver().enableInterrupts();     // it asks for an interrupt on every frame...
            int call = wedged.rx.callFd().fd();
            PeerSideFds.wedge(call);                   // ...on an eventfd whose next write blocks: the bus shares the description
            // Once the attack is over, the attacker reads its counter, so a bus thread stuck in it (today's bug) comes back.
            return talkTo(lan, wedged, talker, null, () -> PeerSideFds.drain(call));
        });
    }

    /**
     * {@code talker} sends to {@code receiver} for as long as the harness watches. The talker never
     * waits: its frames keep completing. At the end every frame is delivered or counted as dropped at
     * the receiver's port (as {@code reason}, if given), and the operator's unplug of the receiver's
     * device finishes within its bound.
     */
    private static Attack.Underway talkTo(Lan lan, NetTenant receiver, NetTenant talker, DropReason reason, Runnable release) {
        Device dr = receiver.device, dt = talker.device;
        Spray spray = Spray.start("talking to " + Lan.portName(dr), i -> talker.sendBlocking(receiver.mac, talker.mac, 60 + (int) (i % 1400), i));
        try {
            Lan.await("the talker's frames keep completing", () -> spray.done() >= ENOUGH || !spray.running());
            if (reason != null)
                Lan.await("frames for the receiver that cannot take them are dropped and counted",
                        () -> lan.stats(dr).dropped(reason) >= ENOUGH / 2 || !spray.running());
        } catch (AssertionError e) {
            release.run();                    // first: a bus thread stuck on the receiver's fd comes back, and the fd is still ours
            end(spray, receiver, talker);
            throw e;
        }
        return () -> {
            try {
                long n = spray.stop();
                Lan.await("the talker's tx ring all came back", () -> reclaimed(talker));
                Lan.await("every frame for " + Lan.portName(dr) + " delivered or counted as a drop", () -> delivered(lan, dr, reason) == n);
                assertThat(lan.stats(dt).dropped()).as("drops at the talker's own port").isZero();
                PortStats at = lan.stats(dr);
                long t0 = System.nanoTime();
                lan.unplug(dr, UNPLUG_BOUND);
                System.out.printf("  %s: %d frames sent to it, %d delivered, drops %s; its unplug took %d ms%n",
                        Lan.portName(dr), n, at.txFrames(), at.drops(), (System.nanoTime() - t0) / 1_000_000);
            } finally {
                release.run();                // before the receiver's fds close: the number could be another fd by then
                end(null, receiver, talker);
                lan.unplug(dt, UNPLUG_BOUND);
            }
        };
    }

    /** Frames the switch delivered to {@code d}'s port plus those it counted as dropped there (as {@code reason}, or any reason but the device's own hairpin). */
    private static long delivered(Lan lan, Device d, DropReason reason) {
        PortStats p = lan.stats(d);
        long drops = reason != null ? p.dropped(reason) : p.dropped() - p.dropped(DropReason.HAIRPIN);
        return p.txFrames() + drops;
    }

    private static boolean reclaimed(NetTenant t) {
        try {
            t.reclaim();
        } catch (Exception e) {
            throw new AssertionError(e);
        }
        return t.txOutstanding() == 0;
    }

    /** Stops what is still running and closes the tenants, keeping the first failure. */
    static void end(Spray spray, NetTenant... tenants) {
        if (spray != null) {
            try {
                spray.stop();
            } catch (AssertionError | InterruptedException ignored) {
                // the step reports its own failure
            }
        }
        for (NetTenant t : tenants) t.close();
    }
}
