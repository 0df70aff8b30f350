/**
 * The vbus IOQ ring (AlacrityVM, 2009) and its shm-signal: {@link dev.jvbus.core.ring.ioq.IoqLayout}
 * (every offset; wire layout and sources in IOQ-LAYOUT.md beside this file),
 * {@link dev.jvbus.core.ring.ioq.ShmSignal} (enabled/pending/dirty doorbell suppression),
 * {@link dev.jvbus.core.ring.ioq.IoqDevice} (south side, checks everything the driver controls,
 * save/restore) and {@link dev.jvbus.core.ring.ioq.IoqDriver} (north side, for the client library
 * and tests).
 */
package dev.jvbus.core.ring.ioq;
