package dev.jvbus.core.bus;

/**
 * Why a connector turned a peer away before it got a session, as an {@link Exposure} counts it
 * ({@link Exposure#refused}): one constant per cause an operator would act on differently.
 */
public enum SessionRefusal {
    /** The peer's uid (SO_PEERCRED) is not one the exposure admits. */
    NOT_ALLOWED,
    /** The exposure already serves as many sessions as its limits allow. */
    LIMIT,
    /** The device already has its one driver (vhost-user: one front-end per device). */
    BUSY,
    /** The device could not take a session (removed meanwhile, held, or it refused the peer). */
    DEVICE,
    /** The bus could not start the session now (no thread could be made, or the like). */
    RESOURCES
}
