package dev.jvbus.connector.kvm;

import java.time.Duration;
import java.util.List;

/** How one run of a micro-VM ended, with what the VMM saw on the way. */
public sealed interface RunReport {
    /** Hypercalls served, port accesses that were not hypercalls (reads return all ones), time from first entry to the end. */
    record Stats(long hypercalls, long refused, long strayPortAccesses, Duration elapsed) {}

    Stats stats();

    /** A one-line account for logs and test messages. */
    String describe();

    /** The guest ended with the EXIT hypercall: its code and report words (empty if the report block was bad, see {@code note}). */
    record Exited(long code, List<Long> words, String note, Stats stats) implements RunReport {
        public Exited { words = List.copyOf(words); }

        @Override
        public String describe() {
            return "guest exited with code " + code + ", report " + words + (note.isEmpty() ? "" : " (" + note + ")") + "; " + stats;
        }
    }

    /**
     * The guest ran past its timeout without ending, and was stopped by immediate_exit and a signal.
     * {@code vcpuStopped} is false if even that did not bring the vCPU thread back within the grace
     * period; its kvm_run mapping and fd are then left open rather than pulled from under it.
     */
    record TimedOut(Duration timeout, long rip, boolean vcpuStopped, Stats stats) implements RunReport {
        @Override
        public String describe() {
            return "guest did not finish within " + timeout.toMillis() + " ms; "
                    + (vcpuStopped ? "stopped by immediate_exit + SIGPIPE at rip 0x" + Long.toHexString(rip)
                                   : "the vCPU thread did not come back even after the signal; its resources are left open")
                    + "; " + stats;
        }
    }

    /** The vCPU stopped in a way the guest cannot continue from: a triple fault, an instruction KVM cannot run, a failed entry. */
    record Faulted(String exit, long detail, long rip, Stats stats) implements RunReport {
        @Override
        public String describe() {
            return "guest stopped by " + exit + (detail != 0 ? " (detail " + detail + ")" : "") + " at rip 0x" + Long.toHexString(rip)
                    + "; " + stats;
        }
    }
}
