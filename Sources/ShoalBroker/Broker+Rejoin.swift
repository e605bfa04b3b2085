import Logging
import ShoalCore

/// Bringing lost pool hosts back: a host deleted from the virtual machine (PVM reported it gone,
/// it could not join at start, or its pvmd was taken for dead) is added again with
/// `pvm_addhosts`, as at start, by a ``RejoinSchedule``; once PVM has it, it takes leases again.
extension Broker {
    /// `host` is not in the virtual machine: no grants there; the first attempt to add it again
    /// is at `nextAttempt`.
    func lost(_ host: String, nextAttempt: Timestamp) {
        guard hosts[host] != nil else { return }
        hosts[host]?.down = true
        hosts[host]?.quarantinedUntil = nil
        hosts[host]?.silentSince = nil
        hosts[host]?.rejoin = RejoinSchedule(
            firstAttempt: nextAttempt, firstDelay: configuration.rejoinFirstDelay, delayLimit: configuration.rejoinDelayLimit)
    }

    /// A report or exit notice from `task`: its host's pvmd is alive.
    func heard(from task: Int32) {
        if let host = taskHosts[task] { hosts[host]?.heardAt = clock() }
    }

    /// The quarantine of a silent host ended and nothing was heard from it meanwhile — not even
    /// the exit of the workers it was told to stop: its pvmd is taken for dead. PVM itself
    /// notices a pvmd killed outright only after minutes (3 minutes of unanswered
    /// retransmissions), and a spawn there would wait that long. The broker deletes the host
    /// from the virtual machine and adds it again at once (a new pvmd), then by the schedule.
    func restart(_ host: String, silentFor: Duration) async throws {
        lost(host, nextAttempt: clock())
        hosts[host]?.rejoining = true  // Until the delete is done.
        try await store.record(.revoke, host: host, now: clock(), reason: EventReason(
            "host \(host) taken for dead: nothing heard from it for \(silentFor); deleting it from the virtual machine to start its pvmd anew"))
        notifyEvents()
        logger.warning("silent host taken for dead; starting its pvmd anew", metadata: [
            "host": "\(host)", "silent_for": "\(silentFor)",
        ])
        Task { await self.finishRemoving(host) }
    }

    private func finishRemoving(_ host: String) async {
        if let failure = await launcher.remove(hosts: [host])[host] {
            // Most likely gone already; adding it again says more.
            logger.warning("could not delete a host from the virtual machine", metadata: ["host": "\(host)", "reason": "\(failure)"])
        }
        hosts[host]?.rejoining = false
    }

    /// Starts an attempt for every lost host whose next attempt is due (one at a time per host;
    /// `pvm_addhosts` may take long, so the tick does not wait for it).
    func startDueRejoins(now: Timestamp) {
        for name in hostOrder {
            guard let state = hosts[name], state.down, !state.rejoining, state.rejoin?.isDue(at: now) ?? false else { continue }
            hosts[name]?.rejoining = true
            Task { await self.rejoin(name) }
        }
    }

    /// One attempt to add `host` to the virtual machine again.
    func rejoin(_ host: String) async {
        let attempt = (hosts[host]?.rejoin?.failures ?? 0) + 1
        // PvmDupHost is a failure too: a deleted host stays in PVM's table until its pvmd
        // acknowledges the halt or is found dead.
        let failure = await launcher.add(hosts: [host])[host]
        hosts[host]?.rejoining = false
        guard hosts[host]?.down == true else { return }
        if let failure {
            hosts[host]?.rejoin?.failed(at: clock())
            if failure != hosts[host]?.rejoinFailure {
                hosts[host]?.rejoinFailure = failure
                let wait = hosts[host]?.rejoin.map { $0.delay(afterFailures: $0.failures) }
                logger.warning("a lost host could not rejoin the pool; trying again (logged once until the reason changes)", metadata: [
                    "host": "\(host)", "attempt": "\(attempt)", "reason": "\(failure)", "next_in": "\(wait.map { "\($0)" } ?? "?")",
                ])
            }
            return
        }
        hosts[host]?.down = false
        hosts[host]?.rejoin = nil
        hosts[host]?.rejoinFailure = nil
        hosts[host]?.heardAt = nil
        do {
            try await store.record(.hostUp, host: host, now: clock(), reason: EventReason(
                "host \(host) is back in the virtual machine (pvm_addhosts, attempt \(attempt)): it takes leases again"))
            notifyEvents()
            logger.notice("lost host back in the pool", metadata: ["host": "\(host)", "attempt": "\(attempt)"])
            try await arbitrate()
        } catch {
            logger.error("could not record a host's return", metadata: ["host": "\(host)", "error": "\(error)"])
        }
    }
}
