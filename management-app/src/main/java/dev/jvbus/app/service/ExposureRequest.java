package dev.jvbus.app.service;

import io.swagger.v3.oas.annotations.media.Schema;

/**
 * An exposure as an operator asks for it: {@code {"kind": "shm", "container": "default"}} makes a
 * container reachable by host processes; {@code {"kind": "vhost-user", "container": "default", "devid": 2}}
 * makes one virtio device reachable by a vhost-user front-end (QEMU, DPDK), in server mode on a socket in
 * the runtime directory unless {@code mode} and {@code path} say otherwise.
 */
@Schema(description = "What to expose and how. Examples: {\"kind\": \"shm\", \"container\": \"default\"}; "
        + "{\"kind\": \"vhost-user\", \"container\": \"default\", \"devid\": 2}; "
        + "{\"kind\": \"vhost-user\", \"container\": \"default\", \"devid\": 2, \"mode\": \"client\", \"path\": \"/run/qemu/net0.sock\"}")
public record ExposureRequest(
        @Schema(description = "shm: the whole container, for host processes (the vbus protocol). vhost-user: one virtio device, "
                + "for QEMU or DPDK. (vhost-user-server and vhost-user-client, as listings show them, are taken too.)",
                allowableValues = {"shm", "vhost-user"}, requiredMode = Schema.RequiredMode.REQUIRED)
        String kind,
        @Schema(description = "The container to expose, or the container of the device", requiredMode = Schema.RequiredMode.REQUIRED)
        String container,
        @Schema(description = "vhost-user only: the device to expose (a virtio device)")
        Long devid,
        @Schema(description = "vhost-user only. server (default): the bus listens and the front-end connects "
                + "(QEMU -chardev socket,path=...). client: the front-end listens and the bus connects, again after every disconnect "
                + "(QEMU -chardev socket,server=on,...)", allowableValues = {"server", "client"})
        String mode,
        @Schema(description = "vhost-user only: the socket. A bare name is a socket in the runtime directory; an absolute path must be "
                + "directly in the runtime directory or in a directory the operator approved (jvbus.exposures.socket-dirs). "
                + "No '.' or '..' parts, no symbolic links. Server mode defaults to <container>-<devid>-<type>.vhost-user.sock in the "
                + "runtime directory; client mode needs it. shm sockets are always <container>.sock in the runtime directory.")
        String path) {
}
