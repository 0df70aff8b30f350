package dev.jvbus.app.service;

/**
 * A feature a limit takes out of a device's offer without naming it, because it requires one the limit took away
 * (unchecking GUEST_CSUM withdraws GUEST_TSO4): what the console shows beside the limit's own.
 *
 * @param feature  the withdrawn feature's name ({@code VIRTIO_NET_F_GUEST_TSO4})
 * @param requires what it requires, in words ({@code VIRTIO_NET_F_GUEST_CSUM}, or several joined by "or")
 */
public record WithdrawnFeature(String feature, String requires) {
    @Override
    public String toString() {
        return feature + " (requires " + requires + ")";
    }
}
