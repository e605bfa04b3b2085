import Logging
import NIOCore
import ShoalProxy
import Synchronization
import Testing

/// Log lines the relay wrote, kept in memory so tests can check that an error was logged.
final class LogCapture: Sendable {
    private let lines = Mutex<[String]>([])

    var logger: Logger {
        var logger = Logger(label: "shoal.proxy.test") { _ in CapturingHandler(capture: self) }
        logger.logLevel = .debug
        return logger
    }

    var all: [String] { lines.withLock { $0 } }

    func contains(_ text: String) -> Bool { all.contains { $0.contains(text) } }

    fileprivate func append(_ line: String) { lines.withLock { $0.append(line) } }

    private struct CapturingHandler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var metadataProvider: Logger.MetadataProvider?
        var logLevel: Logger.Level = .debug

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let fields = (event.metadata ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            capture.append("\(event.level) \(event.message) \(fields.joined(separator: " "))")
        }
    }
}

extension HTTPRelayServer {
    /// The port the relay listens on (tests start relays on port 0).
    var port: Int { localAddress?.port ?? 0 }
}

/// Configuration for tests: short timeouts so failure paths finish quickly.
func testConfiguration(_ change: (inout RelayConfiguration) -> Void = { _ in }) -> RelayConfiguration {
    var configuration = RelayConfiguration()
    configuration.timerResolution = .milliseconds(50)
    configuration.connectTimeout = .seconds(1)
    configuration.unhealthyBackoff = .seconds(5)
    change(&configuration)
    return configuration
}

/// Seconds since `start`, for timing assertions that only need coarse bounds.
func elapsed(since start: ContinuousClock.Instant) -> Double {
    let duration = ContinuousClock.now - start
    return Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

/// Top-level suite: the relay's tests run one at a time, so timing-sensitive ones (queue limits,
/// drains) are not disturbed by load tests on this 2-core machine.
@Suite(.serialized)
enum ProxyTests {}
