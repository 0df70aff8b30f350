package dev.jvbus.app.api;

import dev.jvbus.app.service.NetworkService;
import dev.jvbus.net.NetworkInfo;
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
import org.springframework.web.bind.annotation.RequestParam;
import org.springframework.web.bind.annotation.RestController;

@RestController
@RequestMapping("/api/v1/containers/{container}/networks")
@Tag(name = "networks", description = "A container's L2 networks: ports with counters and the MAC table")
record NetworksController(NetworkService networks) {

    @GetMapping
    @Operation(summary = "List the container's networks")
    List<NetworkInfo> list(@PathVariable String container) {
        return networks.list(container);
    }

    @PostMapping
    @Operation(summary = "Create an empty network")
    ResponseEntity<NetworkInfo> create(@PathVariable String container, @RequestBody NewName body) {
        NetworkInfo n = networks.create(container, body.name());
        return ResponseEntity.created(URI.create("/api/v1/containers/" + container + "/networks/" + n.name())).body(n);
    }

    @GetMapping("/{name}")
    @Operation(summary = "Show a network: its ports (with counters and drops by reason) and MAC table")
    NetworkInfo show(@PathVariable String container, @PathVariable String name) {
        return networks.show(container, name);
    }

    @DeleteMapping("/{name}")
    @Operation(summary = "Delete a network; refused while ports remain unless force (which unplugs its devices)")
    ResponseEntity<Void> delete(@PathVariable String container, @PathVariable String name,
                                @RequestParam(defaultValue = "false") boolean force) {
        networks.delete(container, name, force);
        return ResponseEntity.noContent().build();
    }
}
