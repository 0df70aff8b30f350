package dev.jvbus.app.api;

import dev.jvbus.app.service.MicroVmRequest;
import dev.jvbus.app.service.MicroVmService;
import dev.jvbus.app.service.MicroVmView;
import io.swagger.v3.oas.annotations.Operation;
import io.swagger.v3.oas.annotations.tags.Tag;
import java.net.URI;
import java.util.List;
import org.springframework.http.ResponseEntity;
import org.springframework.web.bind.annotation.DeleteMapping;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RestController;

@RestController
@RequestMapping("/api/v1/microvms")
@Tag(name = "micro-VMs", description = "Micro-VMs on the KVM connector (connectors/kvm/HYPERCALLS.md): a guest that drives bus devices "
        + "by hypercalls. Each is also listed as an exposure of kind kvm, with its session and its device's negotiated features")
record MicroVmsController(MicroVmService microVms) {

    @GetMapping
    @Operation(summary = "List micro-VMs: running ones, and the last ended ones with how they ended")
    List<MicroVmView> list() {
        return microVms.list();
    }

    @PostMapping
    @Operation(summary = "Start a micro-VM attached to a container",
            description = "{\"container\": \"default\", \"program\": \"responder\", \"memoryMiB\": 4, \"devid\": 2, \"ip\": \"192.0.2.2\"}: "
                    + "the bundled guest answers ARP and ping for ip on virtio-net device devid until stopped. Answers 201 with the "
                    + "micro-VM. Problems: no-such-container, no-such-device, invalid-parameter (program, memoryMiB, devid not a "
                    + "virtio-net device, ip), device-busy (409; the device has a driver, or an operation holds it), limit-reached "
                    + "(409; jvbus.microvms.limit), kvm-unavailable (503; no usable /dev/kvm here), refused (KVM said no).")
    ResponseEntity<MicroVmView> create(@RequestBody MicroVmRequest body) {
        MicroVmView v = microVms.create(body);
        return ResponseEntity.created(URI.create("/api/v1/microvms/" + v.id())).body(v);
    }

    @GetMapping("/{id}")
    @Operation(summary = "Show a micro-VM: state, outcome once ended, the guest's counters")
    MicroVmView show(@PathVariable String id) {
        return microVms.show(id);
    }

    @DeleteMapping("/{id}")
    @Operation(summary = "Stop a micro-VM: its guest is stopped, its device reset and released; answers the micro-VM as it ended")
    MicroVmView stop(@PathVariable String id) {
        return microVms.stop(id);
    }
}
