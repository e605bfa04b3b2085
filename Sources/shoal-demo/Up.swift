import ArgumentParser
import Foundation
import ShoalAPI
import ShoalTesting

#if canImport(Glibc)
import Glibc
#endif

/// `shoal up`: the demo's cluster without the load, kept running for your own experiments until
/// `shoal down` (or Ctrl-C). It uses the default state directory and the broker's default
/// address, so `shoal leases`, `shoal pool` … need no options.
struct Up: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Start a local cluster (broker, the front-ends of services.d, a pool of three) and keep it running.",
        discussion: "Runs in the foreground; `shoal down` from another terminal (or Ctrl-C) stops all of it."
    )

    @Option(help: "The broker's state directory (default: SHOAL_STATE_DIR, else ~/.local/state/shoal).") var stateDir: String?
    @Option(help: "The broker's API port.") var port = BrokerAPI.defaultPort
    @Option(help: "Directory of the service manifests.") var services = "services.d"
    @Flag(help: "Use slots of this host even where namespaces would work.") var local = false

    func run() async throws {
        let stop = StopFlag()
        let manifests = try serviceManifests(in: services)
        let state = StateDirectory.resolve(stateDir)
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        let pidFile = UpProcess.pidFile(stateDirectory: state)
        if let running = UpProcess.running(stateDirectory: state) {
            throw ValidationError("a cluster is already up (pid \(running)): `shoal down` first")
        }
        let cluster = try await startCluster(local: local, name: "up", stateDirectory: state, brokerPort: port, log: say)
        do {
            for manifest in manifests { try cluster.startFrontend(manifest) }
            try "\(getpid())\n".write(toFile: pidFile, atomically: true, encoding: .utf8)
            say("cluster up: broker \(cluster.brokerURL) (state \(state))")
            say("front-ends: " + cluster.frontends.map { "\($0.name) on http://127.0.0.1:\($0.port)" }.joined(separator: ", "))
            say("try: shoal leases --watch · shoal pool · curl 'http://127.0.0.1:8081/doc?delay_ms=20' — `shoal down` stops it")
            while !stop.isSet, cluster.broker.isRunning {
                try await Task.sleep(for: .milliseconds(200))
            }
        } catch {
            say("shoal up: \(error)")
        }
        say("stopping the cluster…")
        await cluster.stop()
        try? FileManager.default.removeItem(atPath: pidFile)
        let leftovers = await cluster.leftovers()
        say(leftovers.isEmpty ? "stopped; nothing left running" : "LEFT OVER: \(leftovers.joined(separator: ", "))")
    }
}

/// Where `shoal up` says it runs, for `shoal down`.
enum UpProcess {
    static func pidFile(stateDirectory: String) -> String { stateDirectory + "/up.pid" }

    /// The PID of a `shoal up` that still runs for this state directory.
    static func running(stateDirectory: String) -> Int32? {
        guard let text = try? String(contentsOfFile: pidFile(stateDirectory: stateDirectory), encoding: .utf8),
              let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), kill(pid, 0) == 0 else { return nil }
        return pid
    }
}
