import ArgumentParser
import Foundation
import ShoalAPI
import ShoalAgent
import ShoalCore
import ShoalManifest

/// `shoal frontend MANIFEST`: a front-end agent for one service.
struct FrontendCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "frontend",
        abstract: "Serve one service's public port: the local instance, or the back-ends it holds.",
        discussion: "Prints one line 'shoal frontend NAME listening on HOST:PORT (..., metrics http://HOST:PORT/metrics)' once it serves."
    )

    @Argument(help: "The service's manifest file.") var manifest: String
    @Option(help: "Address the service manager listens on.") var listenHost = "127.0.0.1"
    @Option(help: "Port to listen on instead of the manifest's (0: any free port).") var port: Int?
    @Option(help: "Dispatch policy: paper (three levels) or least-loaded (two random choices).")
    var policy: Dispatcher.Policy = .paper
    @Option(name: .customLong("backend"), help: "A back-end worker given by hand, NAME=HOST:PORT (repeatable).")
    var backends: [String] = []
    @Option(help: "This front-end's name, the owner of its leases (default: the manifest's frontend).") var name: String?
    @Option(help: "Broker URL (default: SHOAL_BROKER, else http://127.0.0.1:7070).") var broker: String?
    @Option(help: "The broker's state directory, where its token is (default: SHOAL_STATE_DIR, else ~/.local/state/shoal). SHOAL_TOKEN overrides.")
    var stateDir: String?
    @Option(help: "Seconds the back-ends must stay Low, on average over that time, before one is given back.") var holdTime: Double = 5
    @Option(help: "Who decides the number of back-ends: shoal (the thresholds), or a reference policy to compare with: kpa (Knative) or hpa (Kubernetes).")
    var scaling: ScalingRule = .shoal
    @Option(help: "With --scaling kpa|hpa: requests in flight per member to aim for (default: the manifest's high threshold).")
    var scalingTarget: Double?
    @Flag(help: "Serve with the local instance (and --backend) only; lease nothing from a broker.") var standalone = false
    @Option(help: "For an https:// broker: the CA (PEM) to trust its certificate with (default: SHOAL_CA_FILE, else the system's roots).")
    var caFile: String?
    @Option(help: "Name the member that answered in this response header (debugging; off by default).") var memberHeader: String?
    @Option(help: "Address the admin listener (GET /metrics) listens on.") var metricsHost = "127.0.0.1"
    @Option(help: "Admin listener port (0: any free port; default: the service's port + 10000, or any free port if that is taken).")
    var metricsPort: Int?
    @Option(help: ArgumentHelp("Serve the public port over TLS with this PEM certificate chain (with --tls-key; overrides the manifest's tls).", valueName: "file"))
    var tlsCertificate: String?
    @Option(help: ArgumentHelp("The certificate's PEM private key (with --tls-certificate).", valueName: "file"))
    var tlsKey: String?
    @OptionGroup var daemon: DaemonOptions

    func validate() throws {
        if let port, !(0...65535).contains(port) { throw ValidationError("--port must be 0...65535") }
        if let metricsPort, !(0...65535).contains(metricsPort) { throw ValidationError("--metrics-port must be 0...65535") }
        guard holdTime >= 0 else { throw ValidationError("--hold-time must be >= 0") }
        if let scalingTarget, !(scalingTarget > 0) { throw ValidationError("--scaling-target must be > 0") }
        if scalingTarget != nil, scaling == .shoal { throw ValidationError("--scaling-target goes with --scaling kpa or hpa") }
        if (tlsCertificate == nil) != (tlsKey == nil) { throw ValidationError("--tls-certificate and --tls-key go together") }
        _ = try backends.map(Self.parseBackend)
        _ = try Self.staticBackendSecret()
    }

    /// `SHOAL_LEASE_SECRET`: what the `--backend` workers (started by hand with the same) want.
    static func staticBackendSecret() throws -> LeaseSecret? {
        guard let text = ProcessInfo.processInfo.environment[WorkerCommand.secretVariable], !text.isEmpty else { return nil }
        guard let secret = LeaseSecret(text) else {
            throw ValidationError("\(WorkerCommand.secretVariable) must be 43 base64url characters, not \(text.utf8.count) characters")
        }
        return secret
    }

    func run() async throws {
        // TLS files on the command line replace the manifest's, which then need not serve.
        var configuration = Frontend.Configuration(manifest: try loadManifest(manifest, checkTLSFiles: tlsCertificate == nil))
        if let tlsCertificate, let tlsKey {
            configuration.tls = try Self.checkedTLSFiles(certificate: tlsCertificate, key: tlsKey)
        }
        configuration.listenHost = listenHost
        configuration.port = port
        configuration.policy = policy
        configuration.staticBackends = try backends.map(Self.parseBackend)
        configuration.staticBackendSecret = try Self.staticBackendSecret()
        configuration.memberHeader = memberHeader
        configuration.metricsHost = metricsHost
        configuration.metricsPort = metricsPort
        if !standalone {
            let token: String
            do {
                let fromEnvironment = ProcessInfo.processInfo.environment["SHOAL_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
                token = try fromEnvironment ?? BrokerToken.read(stateDirectory: StateDirectory.resolve(stateDir))
            } catch {
                printError("shoal frontend: \(error)\nStart `shoal broker` first, set SHOAL_TOKEN, or pass --standalone.")
                throw ExitCode.failure
            }
            let path = URL(fileURLWithPath: manifest).standardizedFileURL.path
            var connection = Frontend.BrokerConnection(
                url: BrokerAddress.resolve(broker), token: token, name: name ?? configuration.manifest.frontend, manifestPath: path)
            connection.holdTime = .milliseconds(Int64(holdTime * 1000))
            connection.caFile = caFile
            connection.scaling = scaling
            connection.scalingTarget = scalingTarget
            configuration.broker = connection
        }
        let logger = daemon.makeLogger(label: "shoal.frontend")
        try await runUntilSignalled(Frontend(configuration: configuration, logger: logger), logger: logger)
    }

    /// The files as absolute paths, or every problem printed and exit 1.
    static func checkedTLSFiles(certificate: String, key: String) throws -> TLSFiles {
        let files = TLSFiles(
            certificatePath: URL(fileURLWithPath: certificate).standardizedFileURL.path,
            keyPath: URL(fileURLWithPath: key).standardizedFileURL.path)
        let problems = TLSFileCheck.problems(files)
        guard problems.isEmpty else {
            for problem in problems {
                switch problem {
                case .certificate(let message): printError("shoal frontend: --tls-certificate: \(message)")
                case .key(let message): printError("shoal frontend: --tls-key: \(message)")
                }
            }
            throw ExitCode.failure
        }
        return files
    }

    static func parseBackend(_ text: String) throws -> (name: String, host: String, port: Int) {
        let parts = text.split(separator: "=", maxSplits: 1)
        guard parts.count == 2, let colon = parts[1].lastIndex(of: ":"),
              let port = Int(parts[1][parts[1].index(after: colon)...]), (1...65535).contains(port)
        else { throw ValidationError("--backend '\(text)': expected NAME=HOST:PORT") }
        return (String(parts[0]), String(parts[1][..<colon]), port)
    }
}

extension Dispatcher.Policy: ExpressibleByArgument {}
extension ScalingRule: ExpressibleByArgument {}
