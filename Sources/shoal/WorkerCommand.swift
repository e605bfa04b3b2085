import ArgumentParser
import ShoalWorker

/// `shoal worker MANIFEST`: what PVM spawns on a back-end for each lease.
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run a service instance behind a draining relay on this back-end (PVM spawns it).",
        discussion: "Prints one line 'shoal worker NAME listening on HOST:PORT ...' once it serves."
    )

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
    @OptionGroup var daemon: DaemonOptions

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0...65535") }
        if let maxQueued, maxQueued < 0 { throw ValidationError("--max-queued must be >= 0") }
    }

    func run() async throws {
        var configuration = Worker.Configuration(manifest: try loadManifest(manifest, checkTLSFiles: false))
        configuration.listenHost = listenHost
        configuration.port = port
        configuration.advertisedHost = advertise
        configuration.maxQueued = maxQueued
        configuration.reportsToParent = pvm
        if let lease, let broker {
            configuration.lease = (lease, broker.split(separator: ",").map { String($0) })
            configuration.brokerCAFile = caFile
        }
        let logger = daemon.makeLogger(label: "shoal.worker")
        try await runUntilSignalled(Worker(configuration: configuration, logger: logger), mayEnd: true, logger: logger)
    }
}
