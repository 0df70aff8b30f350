package dev.jvbus.app.api;

import dev.jvbus.app.service.NetworkService;
import dev.jvbus.app.service.PortRequest;
import dev.jvbus.app.service.PortView;
import io.swagger.v3.oas.annotations.Operation;
import io.swagger.v3.oas.annotations.tags.Tag;
import java.net.URI;
import org.springframework.http.ResponseEntity;
import org.springframework.web.bind.annotation.DeleteMapping;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RestController;

@RestController
@RequestMapping("/api/v1/containers/{container}/networks/{network}/ports")
@Tag(name = "networks", description = "A container's L2 networks: ports with counters and the MAC table")
record PortsController(NetworkService networks) {

    @PostMapping
    @Operation(summary = "Attach a TAP port in a network namespace",
            description = "{\"namespace\": \"blue\", \"ifname\": \"tap0\"}: creates TAP tap0 in the namespace 'ip netns add blue' made "
                    + "(it must exist), sets its link up and joins it to the network; addresses stay the host's. It is kept in the "
                    + "topology store and attached again after a restart. The network's detail shows it with its counters.")
    ResponseEntity<PortView> attach(@PathVariable String container, @PathVariable String network, @RequestBody PortRequest body) {
        PortView p = networks.attachPort(container, network, body);
        return ResponseEntity.created(URI.create("/api/v1/containers/" + container + "/networks/" + network + "/ports/" + p.id())).body(p);
    }

    @DeleteMapping("/{id}")
    @Operation(summary = "Detach a TAP port (it leaves the network; its interface is removed)")
    ResponseEntity<Void> detach(@PathVariable String container, @PathVariable String network, @PathVariable int id) {
        networks.detachPort(container, network, id);
        return ResponseEntity.noContent().build();
    }
}
