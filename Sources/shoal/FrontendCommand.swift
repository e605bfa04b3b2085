import ArgumentParser
import ShoalAgent
import ShoalCore

/// `shoal frontend MANIFEST`: a front-end agent for one service.
struct FrontendCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "frontend",
        abstract: "Serve one service's public port: the local instance, or the back-ends it holds.",
        discussion: "Prints one line 'shoal frontend NAME listening on HOST:PORT ...' once it serves."
    )

    @Argument(help: "The service's manifest file.") var manifest: String
    @Option(help: "Address the service manager listens on.") var listenHost = "127.0.0.1"
    @Option(help: "Port to listen on instead of the manifest's (0: any free port).") var port: Int?
    @Option(help: "Dispatch policy: paper (three levels) or least-loaded (two random choices).")
    var policy: Dispatcher.Policy = .paper
    @Option(name: .customLong("backend"), help: "A back-end worker given by hand, NAME=HOST:PORT (repeatable).")
    var backends: [String] = []
    @OptionGroup var daemon: DaemonOptions

    func validate() throws {
        if let port, !(0...65535).contains(port) { throw ValidationError("--port must be 0...65535") }
        _ = try backends.map(Self.parseBackend)
    }

    func run() async throws {
        var configuration = Frontend.Configuration(manifest: try loadManifest(manifest))
        configuration.listenHost = listenHost
        configuration.port = port
        configuration.policy = policy
        configuration.staticBackends = try backends.map(Self.parseBackend)
        let logger = daemon.makeLogger(label: "shoal.frontend")
        try await runUntilSignalled(Frontend(configuration: configuration, logger: logger), logger: logger)
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
