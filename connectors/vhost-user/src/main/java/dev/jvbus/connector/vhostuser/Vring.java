package dev.jvbus.connector.vhostuser;

import dev.jvbus.connector.vhostuser.protocol.Message;
import dev.jvbus.core.sys.EventFd;

/**
 * What the front-end told us about one ring. Rings are stopped until a kick fd arrives and
 * stopped again by GET_VRING_BASE; with protocol features they also start disabled until
 * SET_VRING_ENABLE (vhost-user.rst, "Ring states"). Session-thread only, except the error fd,
 * which a fault report signals from whatever thread found the fault.
 */
final class Vring {
    final int index;
    int num;
    Message.VringAddr addr;
    /** SET_VRING_BASE: the next available index to consume when the ring (re)starts. */
    int base;
    EventFd kick;
    EventFd call;
    /**
     * SET_VRING_ERR's eventfd. Guarded by this: a fault report signals it from another thread while
     * the session may replace it, and closing an fd a signaller is about to write lets the write
     * land in whatever fd reuses the number. The lock never waits long: a signal is one
     * non-blocking write (see EventFd).
     */
    private EventFd err;
    boolean started;
    boolean enabled;

    Vring(int index) {
        this.index = index;
    }

    boolean configured() {
        return num > 0 && addr != null && kick != null;
    }

    /** Installs a new error fd (null: none) and closes the old one, never while it is being signalled. */
    synchronized void replaceErr(EventFd next) {
        EventFd old = err;
        err = next;
        if (old != null) old.close();
    }

    /** Tells the front-end this ring's device needs a reset, if it gave an error fd. */
    synchronized void signalErr() {
        if (err != null) err.signal();
    }

    void closeFds() {
        if (kick != null) kick.close();
        if (call != null) call.close();
        kick = call = null;
        replaceErr(null);
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
