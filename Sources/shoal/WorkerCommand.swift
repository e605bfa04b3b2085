import ArgumentParser
import Foundation
import ShoalCore
import ShoalWorker

/// `shoal worker MANIFEST`: what PVM spawns on a back-end for each lease.
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run a service instance behind a draining relay on this back-end (PVM spawns it).",
        discussion: """
            Prints one line 'shoal worker NAME listening on HOST:PORT ...' once it serves. With SHOAL_LEASE_SECRET in \
            its environment (or --lease-secret-from-parent) it serves only requests that present that secret (as the \
            front-end holding the lease does), and refuses others with 403; without, it serves anyone who reaches it.
            """
    )

    /// A hand-run worker's secret: in the environment, which other users cannot read, never in argv.
    static let secretVariable = "SHOAL_LEASE_SECRET"

    @Argument(help: "The service's manifest file.") var manifest: String
    @Option(help: "Address the relay listens on.") var listenHost = "0.0.0.0"
    @Option(help: "Port the relay listens on (0: any free port).") var port = 0
    @Option(help: "Address front-ends should use (default: this host's address).") var advertise: String?
    @Option(help: "Requests that may wait beyond the manifest's concurrency (default 16 × concurrency).")
    var maxQueued: Int?
    @Flag(help: "Report to the parent PVM task (ready, load, drained) and obey its drain orders.")
    var pvm = false
    @Option(help: "The lease this worker serves; with --broker, the worker stops once the lease no longer stands.")
    var lease: String?
    @Option(help: "Every broker's API URL, comma-separated, asked about --lease.") var broker: String?
    @Option(help: "For https:// brokers: the CA (PEM) to trust their certificate with (default: the system's roots).")
    var caFile: String?
    @Flag(help: "With --pvm: wait for the lease's secret from the parent (the broker) before serving, then serve only requests that present it.")
    var leaseSecretFromParent = false
    @OptionGroup var daemon: DaemonOptions

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0...65535") }
        if let maxQueued, maxQueued < 0 { throw ValidationError("--max-queued must be >= 0") }
        if leaseSecretFromParent, !pvm { throw ValidationError("--lease-secret-from-parent needs --pvm: the secret comes from the parent task") }
        if let text = ProcessInfo.processInfo.environment[Self.secretVariable], !text.isEmpty, LeaseSecret(text) == nil {
            throw ValidationError("\(Self.secretVariable) must be 43 base64url characters (a secret the broker made), not \(text.utf8.count) characters")
        }
    }

    func run() async throws {
        var configuration = Worker.Configuration(manifest: try loadManifest(manifest, checkTLSFiles: false))
        configuration.listenHost = listenHost
        configuration.port = port
        configuration.advertisedHost = advertise
        configuration.maxQueued = maxQueued
        configuration.reportsToParent = pvm
        if leaseSecretFromParent {
            configuration.leaseSecret = .fromParent
        } else if let secret = ProcessInfo.processInfo.environment[Self.secretVariable].flatMap(LeaseSecret.init) {
            configuration.leaseSecret = .given(secret)
        }
        if let lease, let broker {
            configuration.lease = (lease, broker.split(separator: ",").map { String($0) })
            configuration.brokerCAFile = caFile
        }
        let logger = daemon.makeLogger(label: "shoal.worker")
        try await runUntilSignalled(Worker(configuration: configuration, logger: logger), mayEnd: true, logger: logger)
    }
}
