import Logging
import Synchronization

/// What every event loop of one relay shares: read-only settings and the thread-safe parts.
final class RelayShared: Sendable {
    let configuration: RelayConfiguration
    let members: MemberTable
    let admission: Admission
    let statistics: RelayStatistics
    let logger: Logger
    /// Set by shutdown: connections that arrive anyway are closed at once.
    let isStopping = Atomic<Bool>(false)
    /// Five random hex digits that start every request id this relay makes (see ``RelayLoop/nextRequestID()``).
    let requestIDPrefix: [UInt8] = (0..<5).map { _ in RelayLoop.hexDigit(UInt32.random(in: 0..<16)) }
    /// Numbers the event loops, so each one's request ids differ from the others'.
    let loopCount = Atomic<Int>(0)

    init(configuration: RelayConfiguration, members: MemberTable, admission: Admission, logger: Logger) {
        self.configuration = configuration
        self.members = members
        self.admission = admission
        self.statistics = RelayStatistics()
        self.logger = logger
    }
}
