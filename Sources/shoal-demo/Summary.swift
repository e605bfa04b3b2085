import Foundation
import ShoalAPI
import ShoalCore
import ShoalTesting

/// What the demo saw: requests per service, lease decisions, hosts that went from one service to
/// another while the load ran, and how each service's back-ends followed its own load.
struct Summary {
    /// A host granted to one service after it last served another.
    struct HandOver {
        var host: String
        var from: String
        var to: String
        var second: Int
    }

    /// One service's back-ends against its own load.
    struct Breathing {
        var service: String
        /// The most back-ends it held while its load ran.
        var peak = 0
        /// Seconds from its load's end until it held no more than its minimum again; nil if it never did.
        var backAfter: Int?
    }

    var requests: [String: LoadGenerator.Counts] = [:]
    var granted = 0
    var released = 0
    var revoked = 0
    var preempted = 0
    var handOvers: [HandOver] = []
    var breathing: [Breathing] = []
    /// The broker's view at the end: each service's back-end-seconds per 1 000 requests.
    var services: [ServiceView] = []

    var failed: Int { requests.values.reduce(0) { $0 + $1.failed } }

    /// Lease decisions from the event log, and the hand-overs among the grants made between
    /// `start` and `end` (milliseconds since 1970): a host granted to a service other than the
    /// one it was last granted to.
    mutating func count(_ events: [EventView], loadFrom start: Int64, to end: Int64) {
        granted = events.filter { $0.kind == "grant" }.count
        released = events.filter { $0.kind == "release" }.count
        revoked = events.filter { $0.kind == "revoke" && $0.lease != nil }.count
        preempted = events.filter { $0.kind == "preempt" }.count
        var lastHolder: [String: String] = [:]
        for event in events.sorted(by: { $0.id < $1.id }) where event.kind == "grant" {
            guard let host = event.host, let service = event.service else { continue }
            if let previous = lastHolder[host], previous != service, (start...end).contains(event.time) {
                handOvers.append(HandOver(host: host, from: previous, to: service, second: Int((event.time - start) / 1000)))
            }
            lastHolder[host] = service
        }
    }

    /// Each service's peak while its load ran, and how soon after its load ended it was back to its minimum.
    mutating func follow(_ timeline: Timeline, plan: [LoadShape], scale: Double, minimums: [String: Int]) {
        breathing = plan.map { shape in
            var entry = Breathing(service: shape.service)
            let end = shape.end(scale: scale)
            for second in timeline.seconds {
                guard let point = second.services[shape.service] else { continue }
                if point.connections > 0 { entry.peak = max(entry.peak, point.backends) }
                if entry.backAfter == nil, Double(second.at) >= end, point.backends <= minimums[shape.service, default: 0] {
                    entry.backAfter = second.at - Int(end.rounded(.down))
                }
            }
            return entry
        }
    }

    func print(leftovers: [String], written: [String]) {
        say("")
        say("summary")
        for (service, counts) in requests.sorted(by: { $0.key < $1.key }) {
            say("  \(service): \(counts.succeeded) requests served, \(counts.failed) failed")
        }
        say("  leases: \(granted) granted, \(released) released, \(preempted) preempted, \(revoked) revoked")
        say("  hand-overs while the load ran: \(handOvers.count)"
            + (handOvers.isEmpty ? "" : " (" + handOvers.map { "\($0.second)s \($0.host) \($0.from)→\($0.to)" }.joined(separator: ", ") + ")"))
        for entry in breathing {
            let back = entry.backAfter.map { "back \($0) s after its load ended" } ?? "NOT given back"
            say("  back-ends of \(entry.service): up to \(entry.peak) with its load, \(back)")
        }
        let costs = services.compactMap { service in
            service.backendSecondsPerThousandRequests.map { "\(service.name) \(String(format: "%.1f", $0))" }
        }
        say("  back-end-seconds per 1 000 requests: " + (costs.isEmpty ? "-" : costs.joined(separator: ", ")))
        if !written.isEmpty { say("  timeline: " + written.joined(separator: ", ")) }
        say(leftovers.isEmpty ? "  nothing left running" : "  LEFT OVER: \(leftovers.joined(separator: ", "))")
    }
}
