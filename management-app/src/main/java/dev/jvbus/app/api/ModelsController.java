package dev.jvbus.app.api;

import dev.jvbus.app.service.DeviceService;
import dev.jvbus.app.service.ModelView;
import io.swagger.v3.oas.annotations.Operation;
import io.swagger.v3.oas.annotations.tags.Tag;
import java.util.List;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RestController;

/** What a client needs to offer a hotplug's choices (the shell completes types and feature names from it). */
@RestController
@RequestMapping("/api/v1/models")
@Tag(name = "devices", description = "Hotplug, inspect and hot-remove devices")
record ModelsController(DeviceService devices) {

    @GetMapping
    @Operation(summary = "List the device models this bus has: type, feature names (for a limit), queue names")
    List<ModelView> list() {
        return devices.models();
    }
}
