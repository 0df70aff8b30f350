package dev.jvbus.app.api;

import dev.jvbus.app.service.ExposureRequest;
import dev.jvbus.app.service.ExposureService;
import dev.jvbus.app.service.ExposureView;
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
@RequestMapping("/api/v1/exposures")
@Tag(name = "exposures", description = "Containers and devices made reachable through a connector: shm sockets for host "
        + "processes, vhost-user sockets (server or client mode) for QEMU and DPDK; each with its live sessions")
record ExposuresController(ExposureService exposures) {

    @GetMapping
    @Operation(summary = "List every exposure with its state and sessions (peer pid/uid/gid, since, negotiated features by name)")
    List<ExposureView> list() {
        return exposures.list();
    }

    @PostMapping
    @Operation(summary = "Expose a container on shm, or a virtio device on vhost-user",
            description = "{\"kind\": \"shm\", \"container\": \"c\"} or {\"kind\": \"vhost-user\", \"container\": \"c\", \"devid\": 2, "
                    + "\"mode\": \"server\"|\"client\", \"path\": \"vm1.sock\"}. Answers 201 with the exposure; its \"path\" is the socket "
                    + "to give the front-end. A socket goes directly into the runtime directory (a bare name means there) or into a "
                    + "directory the operator approved (jvbus.exposures.socket-dirs); '.'/'..' parts and symbolic links are refused. "
                    + "Problems: no-such-container, no-such-device, already-exposed (409; one exposure per device, one shm socket per "
                    + "container), kind-not-applicable (422; vhost-user for a device that is not virtio, a devid with shm), "
                    + "socket-path-not-allowed (422), name-taken (409; the socket is another exposure's, or another process listens "
                    + "there), limit-reached (409; jvbus.exposures.limit), invalid-parameter.")
    ResponseEntity<ExposureView> create(@RequestBody ExposureRequest body) {
        ExposureView e = exposures.create(body);
        return ResponseEntity.created(URI.create("/api/v1/exposures/" + e.id())).body(e);
    }

    @GetMapping("/{id}")
    @Operation(summary = "Show an exposure: its socket, state and sessions")
    ExposureView show(@PathVariable String id) {
        return exposures.show(id);
    }

    @DeleteMapping("/{id}")
    @Operation(summary = "Close an exposure: its peers are hung up on (their devices reset), a server socket is removed")
    ResponseEntity<Void> close(@PathVariable String id) {
        exposures.close(id);
        return ResponseEntity.noContent().build();
    }
}
