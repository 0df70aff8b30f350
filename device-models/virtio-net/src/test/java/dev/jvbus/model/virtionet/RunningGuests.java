package dev.jvbus.model.virtionet;

import dev.jvbus.core.bus.Container;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * The guests of a test, each a virtio-net device on its container's default switch, driven by a {@link GuestNet}
 * that negotiated every feature offered, started both rings and filled rx with 256 buffers: ready to send and
 * receive. A test holds one as a {@code @RegisterExtension} field; each guest is closed after the test.
 */
final class RunningGuests implements AfterEachCallback {
    private final Map<String, String> params;
    private final List<GuestNet> guests = new ArrayList<>();

    /** Devices with the model's default parameters. */
    RunningGuests() {
        this(Map.of());
    }

    /** Devices created with {@code params} (an MTU, say). */
    RunningGuests(Map<String, String> params) {
        this.params = params;
    }

    /** A new device in {@code c}, its driver up and its rx ring full. */
    GuestNet in(Container c) throws Exception {
        GuestNet g = new GuestNet(c.addDevice(VirtioNetModel.TYPE, -1L, params), 256);
        guests.add(g);
        g.negotiate(-1L).start().postRx(256);
        return g;
    }

    @Override
    public void afterEach(ExtensionContext context) {
        for (GuestNet g : guests) g.close();
        guests.clear();
    }
}
