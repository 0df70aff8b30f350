package dev.jvbus.core.state;

import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The saved state of one device: enough to recreate it on another bus and let the guest go on
 * without renegotiating (features are imposed, queues restored at their published indices).
 *
 * <p>ANY CHANGE to the fields or their meaning needs a {@link StateCodec#CURRENT_VERSION} bump.
 *
 * @param type        device model type name ("venet", "virtio-net")
 * @param devid       the device's id in its container (32-bit, unsigned)
 * @param status      virtio-style status bits as the driver last saw them
 * @param limit       the source operator's feature limit mask in force (a restore keeps the target's own)
 * @param negotiated  negotiated feature bits (valid once FEATURES_OK was set; else 0)
 * @param config      the device's config space bytes
 * @param queues      per-queue state, by index
 * @param params      the operator's creation parameters (network, mac...), to recreate the device
 * @param model       what only the model knows (e.g. link state): its own record, with a version of its own
 */
public record DeviceState(
        String type,
        int devid,
        int status,
        long limit,
        long negotiated,
        byte[] config,
        List<QueueState> queues,
        Map<String, String> params,
        ModelState model) {

    public DeviceState {
        Objects.requireNonNull(type, "type");
        config = Objects.requireNonNull(config, "config").clone();
        queues = List.copyOf(Objects.requireNonNull(queues, "queues"));
        params = Map.copyOf(Objects.requireNonNull(params, "params"));
        Objects.requireNonNull(model, "model");
    }

    @Override
    public byte[] config() {
        return config.clone();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof DeviceState s
                && type.equals(s.type) && devid == s.devid && status == s.status
                && limit == s.limit && negotiated == s.negotiated
                && Arrays.equals(config, s.config) && queues.equals(s.queues) && params.equals(s.params) && model.equals(s.model);
    }

    @Override
    public int hashCode() {
        return Objects.hash(type, devid, status, limit, negotiated, Arrays.hashCode(config), queues, params, model);
    }

    @Override
    public String toString() {
        return "DeviceState[type=" + type + ", devid=" + Integer.toUnsignedString(devid) + ", status=0x"
                + Integer.toHexString(status) + ", limit=0x" + Long.toHexString(limit) + ", negotiated=0x"
                + Long.toHexString(negotiated) + ", config=" + HexFormat.of().formatHex(config)
                + ", queues=" + queues + ", params=" + params + ", model=" + model + "]";
    }
}
