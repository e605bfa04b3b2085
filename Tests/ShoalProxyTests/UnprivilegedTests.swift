import Foundation
import NIOHTTP1
import ShoalTesting
import Testing

/// The real `shoal frontend` binary, run as an unprivileged user. The relay once set its
/// sockets' "no delay" option at the wrong level (`SOL_SOCKET`, where the same number means
/// `SO_DEBUG`, which needs `CAP_NET_ADMIN`): as root nothing showed, as anyone else every
/// connection failed and the front-end waited forever for its instance to look healthy.
extension ProxyTests {
    @Suite struct Unprivileged {
        @Test(.enabled(if: getuid() == 0, "needs root to become another user; the suite already runs unprivileged"))
        func frontendServesAsNobody() async throws {
            let (directory, manifest) = try webServerManifest()
            defer { try? FileManager.default.removeItem(at: directory) }
            let shoal = try ProcessRunner.builtProduct("shoal").path
            let frontend = try ManagedProcess.start(
                URL(fileURLWithPath: "/usr/bin/setpriv"),
                ["--reuid=65534", "--regid=65534", "--clear-groups", "--", shoal,
                 "frontend", manifest, "--standalone", "--port", "0", "--metrics-port", "0"],
                readyPrefix: "shoal frontend", timeout: 30)
            defer { frontend.stop() }
            let ready = try #require(ReadyLine.frontend(frontend.firstLine))

            let statuses = try await HTTPTestConnection.with(port: ready.port) { connection in
                var statuses: [HTTPResponseStatus] = []
                for _ in 0..<3 { statuses.append(try await connection.request(.GET, "/doc").status) }
                return statuses
            }
            #expect(statuses == [.ok, .ok, .ok])
        }
    }
}
