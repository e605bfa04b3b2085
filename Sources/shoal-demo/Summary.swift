import Foundation
import ShoalAPI
import ShoalCore
import ShoalTesting
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// What the demo saw: requests per loaded service, lease decisions, peak back-ends per service.
struct Summary {
    var requests: [String: LoadGenerator.Counts] = [:]
    var peakBackends: [String: Int] = [:]
    var granted = 0
    var released = 0
    var revoked = 0
    var preempted = 0
    /// The broker's view at the end: each service's back-end-seconds per 1 000 requests.
    var services: [ServiceView] = []

    var failed: Int { requests.values.reduce(0) { $0 + $1.failed } }

    mutating func observe(_ leases: [LeaseView]) {
        for (service, mine) in Dictionary(grouping: leases.filter { $0.state == .active }, by: \.service) {
            peakBackends[service] = max(peakBackends[service] ?? 0, mine.count)
        }
    }

    mutating func count(_ events: [EventView]) {
        granted = events.filter { $0.kind == "grant" }.count
        released = events.filter { $0.kind == "release" }.count
        revoked = events.filter { $0.kind == "revoke" && $0.lease != nil }.count
        preempted = events.filter { $0.kind == "preempt" }.count
    }

    func print(leftovers: [String]) {
        say("")
        say("summary")
        for (service, counts) in requests.sorted(by: { $0.key < $1.key }) {
            say("  \(service): \(counts.succeeded) requests served, \(counts.failed) failed")
        }
        say("  leases: \(granted) granted, \(released) released, \(preempted) preempted, \(revoked) revoked")
        say("  peak back-ends: " + peakBackends.sorted(by: { $0.key < $1.key }).map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        let costs = services.compactMap { service in
            service.backendSecondsPerThousandRequests.map { "\(service.name) \(String(format: "%.1f", $0))" }
        }
        say("  back-end-seconds per 1 000 requests: " + (costs.isEmpty ? "-" : costs.joined(separator: ", ")))
        say(leftovers.isEmpty ? "  nothing left running" : "  LEFT OVER: \(leftovers.joined(separator: ", "))")
    }
}
