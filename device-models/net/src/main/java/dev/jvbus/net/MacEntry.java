package dev.jvbus.net;

/** One learned entry of a switch's MAC table: the address and the port it was last seen on. */
public record MacEntry(String mac, int portId, String portName) { }
