package dev.jvbus.app.api;

import dev.jvbus.app.service.ContainerService;
import dev.jvbus.app.service.ContainerView;
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
@RequestMapping("/api/v1/containers")
@Tag(name = "containers", description = "Namespaces of devids, each with its devices and networks")
record ContainersController(ContainerService containers) {

    @GetMapping
    @Operation(summary = "List containers")
    List<ContainerView> list() {
        return containers.list();
    }

    @PostMapping
    @Operation(summary = "Create an empty container")
    ResponseEntity<ContainerView> create(@RequestBody NewName body) {
        ContainerView c = containers.create(body.name());
        return ResponseEntity.created(URI.create("/api/v1/containers/" + c.name())).body(c);
    }

    @GetMapping("/{name}")
    @Operation(summary = "Show a container: its devices and networks",
            description = "Devices as devid, type and status bits by name; networks by name (their detail is under .../networks).")
    ContainerView show(@PathVariable String name) {
        return containers.show(name);
    }

    @DeleteMapping("/{name}")
    @Operation(summary = "Delete a container, unplugging every device in order",
            description = "Each device is reset and its driver told, newest first; the container's exposures close (peers hung up on, "
                    + "sockets removed), its networks and TAP ports go, then the name is free. Refused with device-busy while an "
                    + "operation holds one of its devices.")
    ResponseEntity<Void> delete(@PathVariable String name) {
        containers.delete(name);
        return ResponseEntity.noContent().build();
    }
}
