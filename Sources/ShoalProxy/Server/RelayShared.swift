import Logging
import NIOHTTP1
import Synchronization

/// What every event loop of one relay shares: read-only settings and the thread-safe parts.
final class RelayShared: Sendable {
    let configuration: RelayConfiguration
    let members: MemberTable
    let admission: Admission
    let statistics: RelayStatistics
    let logger: Logger
    let decoderLimits: NIOHTTPDecoderLimitConfiguration
    /// Set by shutdown: connections that arrive anyway are closed at once.
    let isStopping = Atomic<Bool>(false)

    init(configuration: RelayConfiguration, members: MemberTable, admission: Admission, logger: Logger) {
        self.configuration = configuration
        self.members = members
        self.admission = admission
        self.statistics = RelayStatistics()
        self.logger = logger
        var limits = NIOHTTPDecoderLimitConfiguration()
        limits.maxHeaderFieldSize = configuration.maxHeaderBytes
        limits.maxHeaderListSize = configuration.maxHeaderBytes
        limits.maxHeaderFieldCount = configuration.maxHeaderCount
        self.decoderLimits = limits
    }
}
