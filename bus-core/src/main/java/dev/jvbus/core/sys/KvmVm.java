package dev.jvbus.core.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * One KVM virtual machine: its guest memory slots, its vCPUs and its ioeventfds.
 *
 * <p>Guest memory is a mapping this process owns (a {@link Memfd}'s segment): KVM is told its host
 * address, so the guest and the bus read and write the very same pages. The caller keeps that
 * mapping alive until this VM is closed (the kernel holds the pages, but the slot names our address).
 */
public final class KvmVm implements AutoCloseable {
    private static final long PAGE = LibC.getpagesize();

    private final OwnedFd fd;
    private final int vcpuMmapSize;

    KvmVm(OwnedFd fd, int vcpuMmapSize) {
        this.fd = fd;
        this.vcpuMmapSize = vcpuMmapSize;
    }

    /**
     * Makes {@code memory} the guest's physical memory at {@code guestAddress} (KVM_SET_USER_MEMORY_REGION).
     *
     * @param slot the KVM memory slot (one per region)
     */
    public void mapMemory(int slot, long guestAddress, MemorySegment memory) {
        long size = memory.byteSize();
        if (memory.address() % PAGE != 0 || size % PAGE != 0 || guestAddress % PAGE != 0 || size == 0)
            throw new IllegalArgumentException("guest memory must be whole pages at page-aligned addresses: " + size
                    + " bytes at guest 0x" + Long.toHexString(guestAddress));
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment region = arena.allocate(KvmAbi.MEMORY_REGION_SIZE, 8);
            region.set(ValueLayout.JAVA_INT, 0, slot);
            region.set(ValueLayout.JAVA_INT, 4, 0);
            region.set(ValueLayout.JAVA_LONG, 8, guestAddress);
            region.set(ValueLayout.JAVA_LONG, 16, size);
            region.set(ValueLayout.JAVA_LONG, 24, memory.address());
            Errno.check(LibC.ioctl(fd.number(), KvmAbi.SET_USER_MEMORY_REGION, region.address()), "KVM_SET_USER_MEMORY_REGION");
        }
    }

    /** Creates vCPU {@code id} and maps its shared {@code kvm_run} page. */
    public KvmVcpu createVcpu(int id) {
        OwnedFd vcpu = OwnedFd.of(Errno.check(LibC.ioctl(fd.number(), KvmAbi.CREATE_VCPU, id), "KVM_CREATE_VCPU(" + id + ")"));
        try {
            return new KvmVcpu(vcpu, vcpuMmapSize);
        } catch (RuntimeException e) {
            vcpu.close();
            throw e;
        }
    }

    /**
     * Binds {@code doorbell} to guest writes of {@code length} bytes to I/O port {@code port}
     * (KVM_IOEVENTFD with KVM_IOEVENTFD_FLAG_PIO, and datamatch when {@code value} is present):
     * such a write signals the eventfd inside the kernel and the vCPU goes on without an exit to us.
     */
    public void bindPortDoorbell(int port, int length, java.util.OptionalLong value, EventFd doorbell) {
        ioeventfd(port, length, value, doorbell, 0);
    }

    /** Undoes {@link #bindPortDoorbell} with the same arguments. */
    public void unbindPortDoorbell(int port, int length, java.util.OptionalLong value, EventFd doorbell) {
        ioeventfd(port, length, value, doorbell, KvmAbi.IOEVENTFD_FLAG_DEASSIGN);
    }

    private void ioeventfd(int port, int length, java.util.OptionalLong value, EventFd doorbell, int extraFlags) {
        if (port < 0 || port > 0xFFFF) throw new IllegalArgumentException("not an I/O port: " + port);
        if (length != 1 && length != 2 && length != 4) throw new IllegalArgumentException("port writes are 1, 2 or 4 bytes, not " + length);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment req = arena.allocate(KvmAbi.IOEVENTFD_SIZE, 8);
            int flags = KvmAbi.IOEVENTFD_FLAG_PIO | extraFlags;
            if (value.isPresent()) {
                flags |= KvmAbi.IOEVENTFD_FLAG_DATAMATCH;
                req.set(ValueLayout.JAVA_LONG, KvmAbi.IOEVENTFD_DATAMATCH, value.getAsLong());
            }
            req.set(ValueLayout.JAVA_LONG, KvmAbi.IOEVENTFD_ADDR, port);
            req.set(ValueLayout.JAVA_INT, KvmAbi.IOEVENTFD_LEN, length);
            req.set(ValueLayout.JAVA_INT, KvmAbi.IOEVENTFD_FD, doorbell.fd());
            req.set(ValueLayout.JAVA_INT, KvmAbi.IOEVENTFD_FLAGS, flags);
            Errno.check(LibC.ioctl(fd.number(), KvmAbi.IOEVENTFD, req.address()), "KVM_IOEVENTFD(port 0x" + Integer.toHexString(port) + ")");
        }
    }

    @Override
    public void close() {
        fd.close();
    }
}
