package dev.jvbus.app.api;

import dev.jvbus.app.service.DeviceRequest;
import dev.jvbus.app.service.DeviceService;
import dev.jvbus.app.service.DeviceView;
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
@RequestMapping("/api/v1/containers/{container}/devices")
@Tag(name = "devices", description = "Hotplug, inspect and hot-remove devices")
record DevicesController(DeviceService devices) {

    @GetMapping
    @Operation(summary = "List the container's devices")
    List<DeviceView> list(@PathVariable String container) {
        return devices.list(container);
    }

    @PostMapping
    @Operation(summary = "Hotplug a device",
            description = "type, network, mac (generated when absent), mtu, queueSize (the largest ring of its queues: a power of"
                    + " two up to the model's largest, 1024 for virtio-net, 2048 for venet), and a feature limit by names: "
                    + "{\"limit\": {\"deny\": [\"MRG_RXBUF\"]}} or {\"limit\": {\"allow\": [...]}}")
    ResponseEntity<DeviceView> add(@PathVariable String container, @RequestBody DeviceRequest body) {
        DeviceView d = devices.add(container, body);
        return ResponseEntity.created(URI.create("/api/v1/containers/" + container + "/devices/" + d.devid())).body(d);
    }

    @GetMapping("/{devid}")
    @Operation(summary = "Show a device: status and features by name, queues, parameters")
    DeviceView show(@PathVariable String container, @PathVariable long devid) {
        return devices.show(container, devid);
    }

    @DeleteMapping("/{devid}")
    @Operation(summary = "Hot-remove a device (reset, driver told, port closed)")
    ResponseEntity<Void> remove(@PathVariable String container, @PathVariable long devid) {
        devices.remove(container, devid);
        return ResponseEntity.noContent().build();
    }
}
