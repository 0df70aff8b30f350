package dev.jvbus.app.service;

import java.util.List;
import java.util.Map;

/**
 * What a restore does, or would do ({@code ?dry-run=true}): which device comes back where, who wrote
 * the state, the features it imposes and the operator limit it runs under (by name), the parameters it
 * is made with (after the overrides), the exposures opened for it, and what happens next.
 */
public record RestorePlan(boolean dryRun, String container, long devid, String type, String writtenBy, String thisBus,
                          int stateVersion, String modelState, List<String> status, List<String> imposedFeatures,
                          List<String> limitedFeatures, Map<String, String> parameters, List<String> exposures, String then) { }
