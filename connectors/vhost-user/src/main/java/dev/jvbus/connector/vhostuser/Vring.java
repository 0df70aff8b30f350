package dev.jvbus.connector.vhostuser;

import dev.jvbus.connector.vhostuser.protocol.Message;
import dev.jvbus.core.sys.EventFd;

/**
 * What the front-end told us about one ring. Rings are stopped until a kick fd arrives and
 * stopped again by GET_VRING_BASE; with protocol features they also start disabled until
 * SET_VRING_ENABLE (vhost-user.rst, "Ring states"). Session-thread only.
 */
final class Vring {
    final int index;
    int num;
    Message.VringAddr addr;
    /** SET_VRING_BASE: the next available index to consume when the ring (re)starts. */
    int base;
    EventFd kick;
    EventFd call;
    EventFd err;
    boolean started;
    boolean enabled;

    Vring(int index) {
        this.index = index;
    }

    boolean configured() {
        return num > 0 && addr != null && kick != null;
    }

    void closeFds() {
        if (kick != null) kick.close();
        if (call != null) call.close();
        if (err != null) err.close();
        kick = call = err = null;
    }

    /** Back to the state a new connection starts in. */
    void reset() {
        closeFds();
        num = 0;
        addr = null;
        base = 0;
        started = false;
        enabled = false;
    }
}
