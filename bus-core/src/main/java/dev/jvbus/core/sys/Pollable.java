package dev.jvbus.core.sys;

/** Something backed by an fd that can be registered with an {@link Epoll}. */
public interface Pollable {
    int fd();
}
