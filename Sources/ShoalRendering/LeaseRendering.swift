import ShoalAPI
import ShoalCore

/// `shoal leases`: one row per lease.
///
/// ```text
/// LEASE     SERVICE  FRONTEND  HOST  STATE                             AGE  IN-FLIGHT
/// L-000001  a        a@fe-a    c1    active                          3m12s          4
/// L-000002  b        b@fe-b    c2    draining (preemption, 3s left)   2h4m          1
/// ```
///
/// - Parameters:
///   - now: milliseconds since the Unix epoch, like the views' times; ages count from it.
///   - width: the terminal's width, if the table should fit it; names and then the state's
///     parenthesis are cut before the age and load are lost.
public func render(leases: [LeaseView], now: Int64, width: Int? = nil) -> String {
    guard !leases.isEmpty else { return "No leases." }
    var table = TextTable(columns: [
        .init("LEASE"), .init("SERVICE", truncatable: true), .init("FRONTEND", truncatable: true),
        .init("HOST", truncatable: true), .init("STATE", truncatable: true), .init("AGE", alignment: .right),
        .init("IN-FLIGHT", alignment: .right),
    ])
    for lease in leases {
        table.append([
            lease.id, lease.service, lease.frontend, lease.host ?? "-", stateText(lease, now: now),
            TimeText.duration(milliseconds: now - lease.requestedAt), inFlightText(lease),
        ])
    }
    return table.render(width: width)
}

/// The state, with why for a draining or revoked lease: `draining (preemption, 3s left)`,
/// `revoked (ttl-expired)`.
func stateText(_ lease: LeaseView, now: Int64) -> String {
    switch lease.state {
    case .draining:
        var why: [String] = []
        if let reason = lease.drainReason { why.append(reason.rawValue) }
        if let deadline = lease.drainDeadline {
            why.append(deadline > now ? "\(TimeText.remaining(milliseconds: deadline - now)) left" : "deadline passed")
        }
        return why.isEmpty ? "draining" : "draining (\(why.joined(separator: ", ")))"
    case .revoked:
        return lease.revocation.map { "revoked (\($0.rawValue))" } ?? "revoked"
    case .requested, .granted, .active, .released:
        return lease.state.rawValue
    }
}

/// In-flight requests at the worker, and queued ones when there are any: `4`, `8 (+3 queued)`;
/// `-` before its first load report.
func inFlightText(_ lease: LeaseView) -> String {
    guard let inFlight = lease.inFlight else { return "-" }
    guard let queued = lease.queued, queued > 0 else { return String(inFlight) }
    return "\(inFlight) (+\(queued) queued)"
}
