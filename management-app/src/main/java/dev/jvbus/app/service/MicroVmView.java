package dev.jvbus.app.service;

import dev.jvbus.connector.kvm.LiveMicroVm;
import dev.jvbus.connector.kvm.Responder;
import dev.jvbus.connector.kvm.RunReport;
import java.time.Instant;

/**
 * A micro-VM as the management plane shows it: where it runs, what it runs, whether it still does and,
 * once it has ended, how; and the guest's own counters (guest-written numbers: shown, never trusted).
 * Its session, with the features its device negotiated, is listed with the exposures under the same id.
 *
 * @param state   {@code running}, or {@code ended} (stopped, exited or faulted: {@code outcome} says which)
 * @param outcome how the guest ended, in words; null while it runs
 */
public record MicroVmView(String id, String container, String program, long memoryMiB, long devid, String ip, String state,
                          Instant since, String outcome, Responder.Counters counters) {
    static final String RESPONDER = "responder";

    static MicroVmView of(LiveMicroVm vm) {
        RunReport end = vm.outcome().orElse(null);
        return new MicroVmView(vm.id(), vm.container(), RESPONDER, vm.memoryBytes() >> 20, vm.device().unsigned(),
                vm.responder().ip().getHostAddress(), end == null ? "running" : "ended", vm.since(),
                end == null ? null : end instanceof RunReport.TimedOut ? "stopped" : end.describe(), vm.counters());
    }
}
