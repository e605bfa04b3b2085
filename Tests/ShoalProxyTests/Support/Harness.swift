import Logging
import NIOCore
import ShoalProxy
import ShoalTesting
import Synchronization
import Testing

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
