import Logging
import ServiceLifecycle
import ShoalAPI
import ShoalCore

extension BrokerOperations {
    /// Stand-ins keep no history: an empty one.
    public func history() async throws -> LeaseHistoryView {
        LeaseHistoryView(intervalMilliseconds: 0, windowMilliseconds: 0, samples: [])
    }
}

extension Broker {
    public func history() async -> LeaseHistoryView {
        await leaseHistory.view()
    }

    /// Samples the live leases into ``leaseHistory`` every interval until shutdown.
    func sampleHistoryUntilCancelled() async {
        await cancelWhenGracefulShutdown { await self.sampleHistory() }
    }

    /// On a schedule (not "an interval after the last one"), so the samples stay evenly spaced.
    /// The schedule is real time, so the samples carry the wall clock's time, not ``clock``'s
    /// (which tests hold still).
    private func sampleHistory() async {
        let interval = configuration.history.interval
        var next = ContinuousClock.now
        while !Task.isCancelled {
            do {
                let leases = try await leases(includingFinal: false)
                await leaseHistory.record(LeaseHistory.sample(of: leases, at: Timestamp.now()))
            } catch {
                logger.warning("could not sample the leases for the status page", metadata: ["error": "\(error)"])
            }
            next = max(next + interval, ContinuousClock.now)
            guard (try? await Task.sleep(until: next, clock: .continuous)) != nil else { return }
        }
    }
}
