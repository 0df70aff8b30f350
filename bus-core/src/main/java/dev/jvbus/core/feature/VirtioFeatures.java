package dev.jvbus.core.feature;

/**
 * Transport-level feature bits defined by the virtio 1.x specification (section 6, "Reserved
 * Feature Bits"), shared by every virtio device model. Models add their device-specific bits.
 */
public final class VirtioFeatures {
    private VirtioFeatures() {}

    public static final FeatureBit NOTIFY_ON_EMPTY = new FeatureBit(24, "VIRTIO_F_NOTIFY_ON_EMPTY",
            "legacy: notify when the available ring runs empty");
    public static final FeatureBit ANY_LAYOUT = new FeatureBit(27, "VIRTIO_F_ANY_LAYOUT",
            "legacy: no assumptions about buffer framing");
    public static final FeatureBit INDIRECT_DESC = new FeatureBit(28, "VIRTIO_F_INDIRECT_DESC",
            "descriptors may point to an indirect descriptor table (VIRTIO_RING_F_INDIRECT_DESC)");
    public static final FeatureBit EVENT_IDX = new FeatureBit(29, "VIRTIO_RING_F_EVENT_IDX",
            "used_event / avail_event fields suppress notifications by index");
    public static final FeatureBit VERSION_1 = new FeatureBit(32, "VIRTIO_F_VERSION_1",
            "compliant with virtio 1.x (little-endian, modern layout)");
    public static final FeatureBit ACCESS_PLATFORM = new FeatureBit(33, "VIRTIO_F_ACCESS_PLATFORM",
            "device accesses memory through a platform IOMMU");
    public static final FeatureBit RING_PACKED = new FeatureBit(34, "VIRTIO_F_RING_PACKED",
            "packed virtqueue layout");
    public static final FeatureBit IN_ORDER = new FeatureBit(35, "VIRTIO_F_IN_ORDER",
            "buffers are used in the order they were made available");
}
