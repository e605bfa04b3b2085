import ShoalClient
import Foundation
import ShoalAPI
import ShoalCore
import ShoalTesting

/// The benchmark's use of the demo's cluster (``LocalCluster``): front-ends come and go one at
/// a time, each holding exactly the back-ends a column asks for.
extension LocalCluster {
    /// Starts a front-end for `manifest` on a free port, leasing from the broker.
    /// It keeps its leases for the whole point (a long hold time) and names the answering member.
    func startBenchFrontend(_ manifest: String) throws -> Frontend {
        try startFrontend(manifest, holdTime: 3600, arguments: ["--port", "0", "--member-header", memberHeader])
    }

    /// Waits until `service` holds exactly `count` active leases (bounded).
    func waitForActiveLeases(service: String, count: Int, timeout: Duration = .seconds(120)) async throws {
        let deadline = ContinuousClock.now + timeout
        var last: [LeaseView] = []
        while ContinuousClock.now < deadline {
            last = ((try? await client.leases()) ?? []).filter { $0.service == service }
            if last.filter({ $0.state == .active }).count == count, last.count == count { return }
            try await Task.sleep(for: .milliseconds(250))
        }
        throw BenchError("\(service): wanted \(count) active leases, broker shows "
            + last.map { "\($0.id) \($0.state.rawValue) on \($0.host ?? "-")" }.joined(separator: ", "))
    }

    /// Stops a front-end (it drains and gives its leases back), then waits until the broker shows
    /// none of its leases left (bounded).
    func stopFrontend(_ frontend: Frontend, service: String) async {
        stopFrontend(frontend)
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            let left = ((try? await client.leases()) ?? []).filter { $0.service == service }
            if left.isEmpty { return }
            try? await Task.sleep(for: .milliseconds(250))
        }
        say("warning: \(service)'s leases were not all given back within 30 s")
    }
}

/// The response header the front-ends name the answering member in.
let memberHeader = "X-Shoal-Member"

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

func say(_ line: String) {
    print(line)
    fflush(nil)
}
