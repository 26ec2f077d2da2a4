package petrel.compat;

/** One scenario: runs against the Petrel whose name server {@code args.namesrv()} names. */
@FunctionalInterface
public interface Scenario {
    void run(Args args) throws Exception;
}
