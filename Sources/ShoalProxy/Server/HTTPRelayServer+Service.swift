import ServiceLifecycle

/// The relay in a daemon's `ServiceGroup`: started (``HTTPRelayServer/start()``, which binds and
/// says where) before the group runs, it serves until graceful shutdown, then stops taking
/// connections and lets in-flight requests finish for up to `shutdownGracePeriod`. Put it last
/// in the group: the group stops services in reverse order, so the relay drains first, while
/// what it relays to still runs.
extension HTTPRelayServer: Service {
    public func run() async {
        try? await gracefulShutdown()
        await shutdown(gracePeriod: configuration.shutdownGracePeriod)
    }
}
