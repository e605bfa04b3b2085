import NIOCore
import NIOHTTP1

/// The relay's counters in the Prometheus text format (version 0.0.4), read from the atomics the
/// request path keeps — nothing is counted twice, and a scrape takes only the member table's lock.
///
/// Series (with `prefix`, e.g. `shoal_frontend`, and the caller's constant labels):
/// - `<prefix>_requests_total{member,role,status_class}`: answers relayed from each member;
/// - `<prefix>_request_duration_seconds{member,role}`: histogram, request head to the answer's end;
/// - `<prefix>_in_flight{member,role}`, `<prefix>_member_healthy{member,role}`: gauges;
/// - `<prefix>_retries_total`, `<prefix>_local_responses_total{code,status}`,
///   `<prefix>_client_connections_total`, `<prefix>_upstream_connections_total`.
///
/// A member's series end when it leaves the table (a lease given back).
extension HTTPRelayServer {
    public func metricsExposition(prefix: String, labels: [(String, String)] = []) -> String {
        var out = PrometheusText(constantLabels: labels)
        let members = [self.members.local].compactMap { $0 } + self.members.backends
        let now = NIODeadline.now()

        out.family("\(prefix)_requests_total", type: "counter", help: "Answers relayed from each member, by status class.")
        for member in members {
            for (statusClass, count) in member.responses {
                out.sample("\(prefix)_requests_total", [("member", member.name), ("role", member.role.rawValue), ("status_class", statusClass)], count)
            }
        }

        let name = "\(prefix)_request_duration_seconds"
        out.family(name, type: "histogram", help: "Time from a request's head to the end of the member's answer.")
        for member in members {
            let memberLabels = [("member", member.name), ("role", member.role.rawValue)]
            let snapshot = member.latency.snapshot
            var cumulative = 0
            for (index, bound) in LatencyHistogram.boundsNanoseconds.enumerated() {
                cumulative += snapshot.counts[index]
                out.sample("\(name)_bucket", memberLabels + [("le", PrometheusText.seconds(bound))], cumulative)
            }
            out.sample("\(name)_bucket", memberLabels + [("le", "+Inf")], snapshot.count)
            out.sample("\(name)_sum", memberLabels, PrometheusText.seconds(snapshot.sumNanoseconds))
            out.sample("\(name)_count", memberLabels, snapshot.count)
        }

        out.family("\(prefix)_in_flight", type: "gauge", help: "Requests sent to each member and not answered yet.")
        for member in members {
            out.sample("\(prefix)_in_flight", [("member", member.name), ("role", member.role.rawValue)], member.inFlight)
        }
        out.family("\(prefix)_member_healthy", type: "gauge", help: "1 while a member is in rotation, 0 while it sits out a failure.")
        for member in members {
            out.sample("\(prefix)_member_healthy", [("member", member.name), ("role", member.role.rawValue)], member.isHealthy(at: now) ? 1 : 0)
        }

        out.family("\(prefix)_retries_total", type: "counter", help: "Requests sent again to another member after the first failed before answering.")
        out.sample("\(prefix)_retries_total", [], statistics.retries)
        out.family("\(prefix)_local_responses_total", type: "counter", help: "Error answers the relay gave itself, by X-Shoal-Error code.")
        for (code, count) in statistics.localResponsesByCode {
            out.sample("\(prefix)_local_responses_total", [("code", code.description), ("status", "\(code.status.code)")], count)
        }
        out.family("\(prefix)_client_connections_total", type: "counter", help: "Client connections accepted.")
        out.sample("\(prefix)_client_connections_total", [], statistics.clientConnectionsAccepted)
        out.family("\(prefix)_upstream_connections_total", type: "counter", help: "Connections opened to members.")
        out.sample("\(prefix)_upstream_connections_total", [], statistics.upstreamConnectionsOpened)
        return out.text
    }
}

/// Writes the Prometheus text format: `# HELP`/`# TYPE` per family, one line per sample, label
/// values escaped.
struct PrometheusText {
    let constantLabels: [(String, String)]
    private(set) var text = ""

    init(constantLabels: [(String, String)]) {
        self.constantLabels = constantLabels
    }

    mutating func family(_ name: String, type: String, help: String) {
        text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
    }

    mutating func sample(_ name: String, _ labels: [(String, String)], _ value: Int) {
        sample(name, labels, String(value))
    }

    mutating func sample(_ name: String, _ labels: [(String, String)], _ value: String) {
        text += name
        let all = constantLabels + labels
        if !all.isEmpty {
            text += "{" + all.map { "\($0.0)=\"\(Self.escape($0.1))\"" }.joined(separator: ",") + "}"
        }
        text += " \(value)\n"
    }

    static func escape(_ value: String) -> String {
        guard value.contains(where: { $0 == "\\" || $0 == "\"" || $0 == "\n" }) else { return value }
        var escaped = ""
        for character in value {
            switch character {
            case "\\": escaped += "\\\\"
            case "\"": escaped += "\\\""
            case "\n": escaped += "\\n"
            default: escaped.append(character)
            }
        }
        return escaped
    }

    /// Nanoseconds as seconds, exactly (`0.0001`, `2.5`, `10`).
    static func seconds(_ nanoseconds: UInt64) -> String {
        let whole = nanoseconds / 1_000_000_000
        var fraction = String(nanoseconds % 1_000_000_000)
        guard fraction != "0" else { return String(whole) }
        fraction = String(repeating: "0", count: 9 - fraction.count) + fraction
        while fraction.hasSuffix("0") { fraction.removeLast() }
        return "\(whole).\(fraction)"
    }
}
