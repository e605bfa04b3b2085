import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import ShoalAPI
import ShoalCore
import ShoalManifest
import UnixSignals
import ShoalLogging

/// Options every daemon subcommand shares.
struct DaemonOptions: ParsableArguments {
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    @Option(help: "Log format: text (one readable line per entry) or json (one JSON object per line).")
    var logFormat: LogFormat = .text

    enum LogFormat: String, ExpressibleByArgument, CaseIterable {
        case text, json
    }

    /// A logger writing to stderr at the chosen level. Daemons log; stdout carries their one ready line.
    func makeLogger(label: String) -> Logger {
        var logger = switch logFormat {
        case .text: Logger(label: label) { StreamLogHandler.standardError(label: $0) }
        case .json: Logger(label: label) { JSONLogHandler(label: $0) }
        }
        logger.logLevel = logLevel
        return logger
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// Loads one manifest file, or prints every problem in it (file:line:column: message) to stderr
/// and exits 1. `checkTLSFiles`: see that the `tls` files serve (the front-end's manifest).
func loadManifest(_ path: String, checkTLSFiles: Bool = true) throws -> ServiceManifest {
    switch ManifestLoader(checkTLSFiles: checkTLSFiles).load(paths: [path]) {
    case .success(let loaded) where loaded.count == 1:
        return loaded[0].manifest
    case .success(let loaded):
        printError("\(path): expected one manifest, found \(loaded.count)")
    case .failure(let problems):
        problems.diagnostics.forEach { printError($0.description) }
    }
    throw ExitCode.failure
}

func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

/// Runs `service` until SIGTERM or SIGINT, which start a graceful shutdown.
/// `mayEnd`: the service ending by itself is its normal end (a worker drained and stopped), so
/// the process exits 0 rather than with ServiceGroup's "finished unexpectedly".
func runUntilSignalled(_ service: some Service, mayEnd: Bool = false, logger: Logger) async throws {
    let group = ServiceGroup(configuration: .init(
        services: [.init(service: service, successTerminationBehavior: mayEnd ? .gracefullyShutdownGroup : .cancelGroup)],
        gracefulShutdownSignals: [.sigterm, .sigint],
        logger: logger))
    try await group.run()
}
