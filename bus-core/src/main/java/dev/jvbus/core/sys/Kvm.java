package dev.jvbus.core.sys;

import java.util.Optional;

/**
 * An open {@code /dev/kvm}: the door to making virtual machines ({@link #createVm()}).
 *
 * <p>{@link #unavailable()} says, before anything is built, why KVM cannot be used here (no device,
 * no permission, another API version, a capability missing, not x86-64), so callers and tests can
 * refuse or skip with that reason.
 */
public final class Kvm implements AutoCloseable {
    private static final String DEVICE = "/dev/kvm";

    private final OwnedFd fd;
    private final int vcpuMmapSize;

    private Kvm(OwnedFd fd) {
        this.fd = fd;
        int version = LibC.ioctl(fd.number(), KvmAbi.GET_API_VERSION, 0);
        if (version != KvmAbi.API_VERSION)
            throw new IllegalStateException(DEVICE + " speaks API version " + version + ", not " + KvmAbi.API_VERSION);
        for (int cap : new int[] {KvmAbi.CAP_USER_MEMORY, KvmAbi.CAP_IMMEDIATE_EXIT, KvmAbi.CAP_SYNC_REGS, KvmAbi.CAP_IOEVENTFD}) {
            if (LibC.ioctl(fd.number(), KvmAbi.CHECK_EXTENSION, cap) <= 0)
                throw new IllegalStateException(DEVICE + " lacks capability " + cap + " (see linux/kvm.h KVM_CAP_*)");
        }
        this.vcpuMmapSize = Errno.check(LibC.ioctl(fd.number(), KvmAbi.GET_VCPU_MMAP_SIZE, 0), "KVM_GET_VCPU_MMAP_SIZE");
    }

    /**
     * Opens {@code /dev/kvm} and checks API version 12 and the capabilities jvbus needs (user memory,
     * immediate_exit, sync regs, ioeventfd).
     *
     * @throws Errno.SysException if the device cannot be opened
     * @throws IllegalStateException if it is another API version or lacks a capability
     */
    public static Kvm open() {
        if (!isX86_64()) throw new IllegalStateException("the KVM bindings are written for x86-64, not " + System.getProperty("os.arch"));
        OwnedFd fd = OwnedFd.of(Errno.check(LibC.open(DEVICE, LibC.O_RDWR | LibC.O_CLOEXEC), "open(" + DEVICE + ")"));
        try {
            return new Kvm(fd);
        } catch (RuntimeException e) {
            fd.close();
            throw e;
        }
    }

    /** Why KVM cannot be used on this machine, or empty if {@link #open()} works. Opens and closes the device once. */
    public static Optional<String> unavailable() {
        try (Kvm kvm = open()) {
            return Optional.empty();
        } catch (Errno.SysException e) {
            return Optional.of(e.getMessage());
        } catch (IllegalStateException e) {
            return Optional.of(e.getMessage());
        }
    }

    private static boolean isX86_64() {
        String arch = System.getProperty("os.arch");
        return "amd64".equals(arch) || "x86_64".equals(arch);
    }

    /** A new, empty virtual machine (KVM_CREATE_VM); it lives until closed, independently of this handle. */
    public KvmVm createVm() {
        // A signal can end KVM_CREATE_VM with EINTR before anything was made (seen once in the suite: the
        // micro-VMs kick their vCPU threads with signals); it is then simply asked again, a bounded number of times.
        for (int attempt = 1; ; attempt++) {
            int vm = LibC.ioctl(fd.number(), KvmAbi.CREATE_VM, 0);
            if (vm >= 0) return new KvmVm(OwnedFd.of(vm), vcpuMmapSize);
            int e = Errno.last();
            if (e != Errno.EINTR || attempt == CREATE_VM_ATTEMPTS) throw Errno.failure("KVM_CREATE_VM", e);
        }
    }

    private static final int CREATE_VM_ATTEMPTS = 10;

    @Override
    public void close() {
        fd.close();
    }
}
