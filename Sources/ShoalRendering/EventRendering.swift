import ShoalAPI
import Foundation
import ShoalCore

/// One line of `shoal events`:
/// `#42 2026-03-01 14:05:09.042 grant   L-000001 a c1 requested→granted: slot 1 of 2 on c1`.
///
/// The id comes first so a later `shoal events --after ID` can carry on from any line. Missing
/// parts read `-`; an event that changes no state has no `from→to`.
public func render(event: EventView, timeZone: TimeZone = .current) -> String {
    var parts = [
        "#\(event.id)", TimeText.timestamp(milliseconds: event.time, timeZone: timeZone),
        event.kind.padding(toLength: max(event.kind.count, 7), withPad: " ", startingAt: 0),
        event.lease ?? "-", event.service ?? "-", event.host ?? "-",
    ]
    if event.fromState != nil || event.toState != nil {
        parts.append("\(event.fromState?.rawValue ?? "-")→\(event.toState?.rawValue ?? "-")")
    }
    return parts.joined(separator: " ") + ": " + event.reason
}

/// `shoal leases explain`: the lease as it is now, then every event of its life with the
/// figures behind each decision.
///
/// ```text
/// lease      L-000001
/// service    a (front-end a@fe-a)
/// host       c1
/// endpoint   c1:40123
/// state      draining (preemption, 3s left)
/// age        3m12s
/// expires    in 25s
/// in flight  4 (+1 queued)
///
/// history
///   #3 2026-03-01 14:05:09.042 request L-000001 a - -→requested: all 2 back-ends High
///      {"high":6,"inFlight":[7,9]}
/// ```
public func render(explanation: LeaseExplanation, now: Int64, timeZone: TimeZone = .current) -> String {
    let lease = explanation.lease
    var fields: [(String, String)] = [
        ("lease", lease.id),
        ("service", "\(lease.service) (front-end \(lease.frontend))"),
        ("host", lease.host ?? (lease.state.isFinal ? "-" : "- (none yet)")),
    ]
    if let endpoint = lease.endpoint { fields.append(("endpoint", endpoint)) }
    fields.append(("state", stateText(lease, now: now)))
    fields.append(("age", TimeText.duration(milliseconds: now - lease.requestedAt)))
    if !lease.state.isFinal {
        let expiry = lease.expiresAt > now
            ? "in \(TimeText.remaining(milliseconds: lease.expiresAt - now))"
            : "\(TimeText.duration(milliseconds: now - lease.expiresAt)) ago"
        fields.append(("expires", expiry))
    }
    if lease.inFlight != nil { fields.append(("in flight", inFlightText(lease))) }

    let labelWidth = fields.map(\.0.count).max() ?? 0
    var lines = fields.map { label, value in
        label.padding(toLength: labelWidth, withPad: " ", startingAt: 0) + "  " + value
    }
    lines.append("")
    guard !explanation.events.isEmpty else { return (lines + ["history: no events"]).joined(separator: "\n") }
    lines.append("history")
    for event in explanation.events {
        let line = render(event: event, timeZone: timeZone)
        lines.append("  " + line)
        if let details = event.details, !details.isEmpty {
            // Under the reason, past the id, so the figures read as part of their event.
            lines.append(String(repeating: " ", count: 4 + String(event.id).count) + details)
        }
    }
    return lines.joined(separator: "\n")
}
