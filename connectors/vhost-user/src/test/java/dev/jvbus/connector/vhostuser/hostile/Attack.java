package dev.jvbus.connector.vhostuser.hostile;

/**
 * One hostile tenant's move against the shared bus: a step of {@link HostilePeersTest}.
 *
 * @param point  the point of issue 9 it tries ("1" .. "8")
 * @param name   what the bus must do about it, as a sentence (the step's display name)
 * @param needs  the branch whose fix the expected outcome relies on, while that fix is not on main: the
 *               step is then skipped, naming it (run with {@code -Dhostile.all=true} to try it anyway);
 *               null once the fix is merged. Flip it to null when the branch lands.
 * @param move   the attack itself
 */
record Attack(String point, String name, String needs, Move move) {

    /** An attack whose expected outcome holds on main. */
    static Attack now(String point, String name, Move move) {
        return new Attack(point, name, null, move);
    }

    /** An attack whose expected outcome holds once {@code branch} is merged. */
    static Attack once(String branch, String point, String name, Move move) {
        return new Attack(point, name, branch, move);
    }

    /**
     * Starts the attack against {@code lan} and checks what the bus did about it so far; returns what
     * keeps it going while the harness watches the well-behaved pair under it.
     */
    @FunctionalInterface
    interface Move {
        Underway launch(Lan lan) throws Exception;
    }

    /** An attack in progress. Closing ends it, checks what is left to check (counted drops, an unplug that finishes) and cleans up. */
    @FunctionalInterface
    interface Underway extends AutoCloseable {
        @Override
        void close() throws Exception;

        /** An attack that was over when {@link Move#launch} returned. */
        Underway DONE = () -> { };
    }

    @Override
    public String toString() {
        return "(" + point + ") " + name;
    }
}
