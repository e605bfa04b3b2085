import Foundation
import Synchronization

/// The fault cases' figures (`FaultInjectionTests` and `HighAvailabilityTests`): each case's row
/// as it finishes, the whole table once every case has. docs/reliability.md shows one run's.
enum FaultTable {
    struct Row: Sendable {
        var name: String
        var sent: Int
        var answered: Int
        var failed: Int
        /// Requests the front-ends' relays sent again; `nil` where not counted.
        var retried: Int?
        var revoked: Int
        var released: Int
        /// Grants of a slot while an earlier lease of it was still live, over the whole event log.
        var grantedTwice: Int
        /// From the fault until every front-end served from new leases, where leases were lost.
        var leasedAgain: Duration?
        /// `Cluster.invariantViolations()` empty; `nil` where the case has no `Cluster`.
        var invariantsHold: Bool?
        var duration: Duration
        /// The slowest answered request, in milliseconds.
        var slowest: Double
        var note: String?
    }

    /// Ten fault cases and the high-availability test's three.
    static let caseCount = 13
    private static let rows = Mutex<[Row]>([])
    /// Rewritten after every case.
    static let file = NSTemporaryDirectory() + "shoal-fault-injection-\(getpid()).md"

    static func add(_ row: Row) {
        let all = rows.withLock { rows in
            rows.append(row)
            return rows.sorted { order($0.name) < order($1.name) }
        }
        let table = render(all)
        try? table.write(toFile: file, atomically: true, encoding: .utf8)
        print("fault injection: \(row.name): \(row.sent) sent, \(row.answered) answered, \(row.failed) failed, "
            + "\(row.grantedTwice) granted twice, invariants \(row.invariantsHold.map { $0 ? "ok" : "BROKEN" } ?? "-")")
        if all.count == caseCount {
            print("fault injection figures (also in \(file)):\n" + table)
        }
    }

    /// Case numbers in order, the high-availability rows (`HA1` …) after them.
    private static func order(_ name: String) -> (Int, String) {
        let number = name.prefix { $0.isNumber }
        return (Int(number) ?? 100, name)
    }

    static func render(_ rows: [Row]) -> String {
        var lines = [
            "| case | sent | answered | failed | retried | leases revoked / released | leased again after | granted twice | invariants | slowest answer | duration |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|",
        ]
        for row in rows {
            lines.append("| \(row.name) | \(row.sent) | \(row.answered) | \(row.failed) | \(row.retried.map(String.init) ?? "–") | "
                + "\(row.revoked) / \(row.released) | \(row.leasedAgain.map { String(format: "%.1f s", seconds($0)) } ?? "–") | "
                + "\(row.grantedTwice) | \(row.invariantsHold.map { $0 ? "ok" : "BROKEN" } ?? "–") | "
                + "\(String(format: "%.0f ms", row.slowest)) | \(String(format: "%.1f s", seconds(row.duration))) |")
        }
        let notes = rows.compactMap { row in row.note.map { "- \(row.name): \($0)" } }
        return (lines + (notes.isEmpty ? [] : [""] + notes)).joined(separator: "\n") + "\n"
    }

    private static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
