package dev.jvbus.app.api;

/** The body that creates a named resource (a container, a network): {@code {"name": "..."}}. */
record NewName(String name) { }
