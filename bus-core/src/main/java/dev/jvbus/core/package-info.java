/** jvbus bus core: no Spring, no connector, no device model lives here. */
package dev.jvbus.core;
