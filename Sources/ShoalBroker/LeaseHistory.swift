import ShoalAPI
import ShoalCore

/// The status page's memory of the last minutes: a bounded ring of samples of leases per service
/// (the broker adds one every ``Configuration/interval``), served at `GET /v1/history`.
///
/// Sampled rather than rebuilt from the event log: a chart of the last ten minutes would otherwise
/// have to replay the log from before the window to know what was held when it opened, on every
/// request. The ring costs a few kilobytes and one lease-table read per interval; a restarted
/// broker's chart starts empty.
public actor LeaseHistory {
    public struct Configuration: Sendable, Hashable {
        /// Time between samples.
        public var interval: Duration
        /// How far back the history reaches; older samples are dropped.
        public var window: Duration

        public init(interval: Duration = .seconds(2), window: Duration = .seconds(600)) {
            self.interval = interval
            self.window = window
        }

        /// How many samples the window holds (at least one).
        public var capacity: Int { max(1, Int(window / interval)) }
    }

    public let configuration: Configuration
    private var ring: [LeaseHistoryView.Sample] = []
    /// Where the oldest sample is, once the ring is full.
    private var oldest = 0

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
        ring.reserveCapacity(configuration.capacity)
    }

    /// Adds a sample, dropping the oldest once the window is full.
    public func record(_ sample: LeaseHistoryView.Sample) {
        if ring.count < configuration.capacity {
            ring.append(sample)
        } else {
            ring[oldest] = sample
            oldest = (oldest + 1) % ring.count
        }
    }

    /// Every sample, oldest first.
    public func view() -> LeaseHistoryView {
        LeaseHistoryView(
            intervalMilliseconds: configuration.interval.wholeMilliseconds,
            windowMilliseconds: configuration.window.wholeMilliseconds,
            samples: Array(ring[oldest...] + ring[..<oldest])
        )
    }

    /// What `leases` (the live leases) amount to per service at `time`.
    public static func sample(of leases: [LeaseView], at time: Timestamp) -> LeaseHistoryView.Sample {
        var sample = LeaseHistoryView.Sample(time: time.milliseconds)
        for lease in leases {
            switch lease.state {
            case .granted, .active, .draining: sample.held[lease.service, default: 0] += 1
            case .requested: sample.waiting[lease.service, default: 0] += 1
            case .released, .revoked: break
            }
        }
        return sample
    }
}
