package dev.jvbus.model.venet;

/**
 * One venet device's counters (racy reads of plain fields: each is exact, the set is not atomic).
 * tx = frames the driver sent (handed to the switch); rx = frames written into the driver's rx
 * buffers. Drops on rx are also counted by the switch port, by reason.
 *
 * @param txDropsRunt       tx frames shorter than an Ethernet header
 * @param txDropsOversize   tx frames longer than the device's largest frame
 * @param txDropsBadHeader  SG tx descriptors whose venet_sg header was malformed
 * @param txChecksums       checksums completed for SG frames that asked for it
 * @param rxFlushed         rx buffers handed back empty by FLUSHRX
 * @param eventsDropped     link events lost because the queue of pending ones was full
 * @param rxStuckCloses     times stopping rx gave up on a delivery stuck past the rx gate's bound
 * @param workersLeftBehind tx workers a reset could not stop within the bound (stuck in a delivery);
 *                          each exits when its call returns, touching no ring
 */
public record VenetStats(long txFrames, long txBytes, long txDropsRunt, long txDropsOversize, long txDropsBadHeader,
                         long txChecksums, long rxFrames, long rxBytes, long rxDropsNoBuffer, long rxDropsTooBig,
                         long rxDropsPortDown, long rxDropsRingFault, long rxFlushed, long eventsLinkstate, long eventsTxc,
                         long eventsDropped, long rxStuckCloses, long workersLeftBehind) {}
