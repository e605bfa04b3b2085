import Logging
import NIOCore
import ShoalAPI
import ShoalCore
import ShoalProxy

/// The front-end's load manager: measures its members' levels, applies ``ScalePolicy`` (the
/// paper's rule with hysteresis), and leases, drains, cancels and releases back-ends through the
/// broker; follows the broker's event log so a revocation or preemption takes a member out of
/// rotation at once.
///
/// The service manager never waits for it: while the broker is unreachable, requests keep
/// going to the members there are, and the manager retries its calls.
public actor LoadManager {
    public struct Configuration: Sendable {
        public var frontend: String
        public var manifest: ServiceManifest
        /// Absolute path of the manifest: the broker and the workers read it.
        public var manifestPath: String
        /// How often the policy looks at the levels.
        public var interval: Duration = .milliseconds(100)
        /// How long every back-end stays Low before one is given back.
        public var holdTime: Duration = .seconds(5)

        public init(frontend: String, manifest: ServiceManifest, manifestPath: String) {
            self.frontend = frontend
            self.manifest = manifest
            self.manifestPath = manifestPath
        }
    }

    /// What the front-end knows of one of its leases.
    struct Tracked {
        var view: LeaseView
        /// When this front-end asked for it (its own clock), for the readiness measurement.
        var askedAt: Timestamp?
        /// The member it routes to, while in rotation.
        var member: Member?
        /// This front-end started a scale-down drain (it may still cancel it).
        var scalingDown = false
        /// Out of rotation, waiting for the front-end's in-flight requests there to finish.
        var draining = false
    }

    private let configuration: Configuration
    private let members: MemberTable
    private let commands: BrokerClient
    private let eventFeed: BrokerClient
    private let logger: Logger
    private let metrics: FrontendMetrics?
    private var policy: ScalePolicy
    private var leases: [String: Tracked] = [:] {
        didSet { metrics?.leasesChanged(leases.values.map(\.view.state)) }
    }
    private var registered = false
    private var ttl: Duration = .seconds(10)
    /// Measured times from asking to serving (newest last), which set the policy's readiness allowance.
    private var readiness: [Duration] = []
    private var lastComplaint: ContinuousClock.Instant?

    public init(
        configuration: Configuration, members: MemberTable, commands: BrokerClient, eventFeed: BrokerClient,
        metrics: FrontendMetrics? = nil, logger: Logger
    ) {
        self.configuration = configuration
        self.members = members
        self.commands = commands
        self.eventFeed = eventFeed
        self.metrics = metrics
        var logger = logger
        logger[metadataKey: "service"] = "\(configuration.manifest.name)"
        logger[metadataKey: "frontend"] = "\(configuration.frontend)"
        self.logger = logger
        let manifest = configuration.manifest
        policy = ScalePolicy(thresholds: manifest.thresholds, backends: manifest.backends, holdTime: configuration.holdTime)
    }

    /// Runs until cancelled.
    public func run() async {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.controlLoop() }
            group.addTask { await self.heartbeatLoop() }
            group.addTask { await self.followEvents() }
        }
    }

    /// The front-end is stopping and has finished its in-flight requests: every lease goes
    /// back now (the workers drain what is left), rather than waiting out its TTL. Best effort:
    /// a broker that cannot be reached reclaims them after the TTL anyway.
    public func giveBackAll() async {
        for (id, tracked) in leases where !tracked.view.state.isFinal {
            if let member = tracked.member { members.removeBackend(named: member.name) }
            if tracked.view.state == .active {
                _ = try? await commands.drain(lease: id, LeaseChangeRequest(reason: "front-end \(configuration.frontend) stopping"))
            }
            _ = try? await commands.release(lease: id, LeaseChangeRequest(reason: "front-end \(configuration.frontend) stopped"))
        }
        leases = [:]
    }

    // MARK: Loops

    private func controlLoop() async {
        while (try? await Task.sleep(for: configuration.interval)) != nil {
            guard registered else { continue }
            await evaluate()
        }
    }

    private func heartbeatLoop() async {
        while !Task.isCancelled {
            await synchronize()
            try? await Task.sleep(for: registered ? ttl / 3 : .milliseconds(500))
        }
    }

    /// Long-polls the broker's event log; anything about this front-end's leases (or a host)
    /// makes it synchronize at once.
    private func followEvents() async {
        var cursor: Int64 = -1
        while !Task.isCancelled {
            do {
                let page = try await eventFeed.events(after: cursor, limit: 500, wait: .seconds(20))
                let concernsUs = page.events.contains { event in
                    event.lease.map { leases[$0] != nil } ?? (event.host != nil)
                }
                cursor = page.next
                if concernsUs { await synchronize() }
            } catch is CancellationError {
                return
            } catch {
                complain("cannot follow the broker's events", error)
                try? await Task.sleep(for: .milliseconds(500))
            }
        }
    }

    // MARK: Synchronizing with the broker

    /// Registers if needed, renews every lease (heartbeat) and brings the members in line with
    /// the broker's view of the leases.
    private func synchronize() async {
        do {
            let status: FrontendStatus
            if registered {
                do {
                    status = try await commands.heartbeat(frontend: configuration.frontend, Heartbeat(localInFlight: members.local?.inFlight))
                } catch let error as BrokerClientError where error.statusCode == 404 {
                    registered = false  // The broker forgot us (a new state directory): introduce ourselves again.
                    throw error
                }
            } else {
                status = try await commands.register(FrontendRegistration(name: configuration.frontend, manifestPath: configuration.manifestPath))
                registered = true
                logger.info("registered with the broker", metadata: ["frontend": "\(configuration.frontend)", "leases": "\(status.leases.count)"])
            }
            ttl = .milliseconds(status.leaseTTLMilliseconds)
            reconcile(status.leases)
        } catch {
            complain("cannot reach the broker; serving with the members there are", error)
        }
    }

    /// Members follow the leases: active ones are routed to, revoked or released ones removed at
    /// once, preempted or maintenance-drained ones drained and then released.
    private func reconcile(_ views: [LeaseView]) {
        let listed = Dictionary(uniqueKeysWithValues: views.map { ($0.id, $0) })
        for (id, tracked) in leases where listed[id] == nil {
            // Ended without our drain: revoked, so the back-end is gone. Route elsewhere now, and
            // send what still waits for an answer there elsewhere too.
            if let member = tracked.member, !tracked.draining {
                members.removeBackend(named: member.name, abandoningInFlight: true)
                logger.notice("back-end removed: its lease ended", metadata: Self.metadata(tracked.view))
            }
            leases[id] = nil
        }
        for view in views {
            var tracked = leases[view.id] ?? Tracked(view: view)
            tracked.view = view
            switch view.state {
            case .active where tracked.member == nil && !tracked.draining:
                if let endpoint = view.endpoint, let address = try? Self.address(endpoint) {
                    tracked.member = try? members.addBackend(name: view.id, address: address)
                    if let asked = tracked.askedAt {
                        readiness = (readiness + [Timestamp.now() - asked]).suffix(8)
                        policy.readinessAllowance = max(.seconds(1), (readiness.max() ?? .seconds(5)) * 2)
                        tracked.askedAt = nil
                    }
                    var metadata = Self.metadata(view)
                    metadata["endpoint"] = "\(endpoint)"
                    logger.info("back-end added", metadata: metadata)
                }
            case .draining where !tracked.draining:
                // The broker reclaims it (preemption, maintenance): stop routing, finish, give back.
                tracked.draining = true
                startDrain(view.id, member: tracked.member, reason: "\(view.drainReason?.rawValue ?? "drain") ordered by the broker")
            default:
                break
            }
            leases[view.id] = tracked
        }
    }

    // MARK: The policy

    private func evaluate() async {
        let routed = members.backends
        let now = Timestamp.now()
        let withPending = ScalePolicy.Snapshot(
            localInFlight: members.local?.inFlight ?? 0,
            serving: routed.map(\.inFlight),
            // Granted, not serving yet: capacity on its way, for as long as a start usually takes.
            pendingSince: leases.values.filter { $0.view.state == .granted }
                .map { $0.askedAt ?? Timestamp(milliseconds: $0.view.requestedAt) },
            draining: leases.values.filter { $0.scalingDown && $0.draining }.count)
        let queued = leases.values.filter { $0.view.state == .requested }
        switch policy.evaluate(withPending, now: now) {
        case .hold:
            break
        case .acquire:
            guard queued.isEmpty else { break }  // Already waiting in the broker's queue.
            await acquire(levels: withPending, held: routed.count + withPending.pendingSince.count)
        case .cancelDrain:
            await cancelNewestDrain()
        case .release(let index):
            guard index < routed.count, let id = leases.first(where: { $0.value.member === routed[index] })?.key else { break }
            await scaleDown(id)
        }
    }

    private func acquire(levels: ScalePolicy.Snapshot, held: Int) async {
        let thresholds = configuration.manifest.thresholds
        let minimum = configuration.manifest.backends.min
        let reason = held < minimum
            ? "below min_backends \(minimum): holds \(held)"
            : levels.serving.isEmpty
            ? "front-end alone is High: \(levels.localInFlight) in flight >= high \(thresholds.high)"
            : "all \(levels.serving.count) back-ends High: in flight \(levels.serving) >= high \(thresholds.high)"
        do {
            let view = try await commands.acquire(AcquireRequest(frontend: configuration.frontend, reason: reason))
            leases[view.id] = Tracked(view: view, askedAt: .now())
            metrics?.leaseRequested(view.state == .requested ? "queued" : "granted")
            var metadata = Self.metadata(view)
            metadata["why"] = "\(reason)"
            logger.info("lease asked for", metadata: metadata)
        } catch let error as BrokerClientError where error.statusCode == 409 {
            metrics?.leaseRequested("denied")
            logger.debug("lease denied", metadata: ["why": "\(error)"])
        } catch {
            metrics?.leaseRequested("failed")
            complain("cannot ask the broker for a back-end", error)
        }
    }

    private func scaleDown(_ id: String) async {
        guard var tracked = leases[id] else { return }
        let low = configuration.manifest.thresholds.low
        let reason = "every back-end Low (< \(low) in flight) for \(configuration.holdTime)"
        do {
            tracked.view = try await commands.drain(lease: id, LeaseChangeRequest(reason: reason))
        } catch {
            complain("cannot start a scale-down drain", error)
            return
        }
        tracked.scalingDown = true
        tracked.draining = true
        leases[id] = tracked
        startDrain(id, member: tracked.member, reason: reason)
    }

    private func cancelNewestDrain() async {
        guard let id = leases.filter({ $0.value.scalingDown && $0.value.draining }).keys.max(),
              var tracked = leases[id], let endpoint = tracked.view.endpoint else { return }
        do {
            tracked.view = try await commands.cancelDrain(lease: id, LeaseChangeRequest(reason: "load rose again while it drained"))
        } catch {
            complain("cannot cancel a drain", error)
            return
        }
        tracked.scalingDown = false
        tracked.draining = false
        tracked.member = try? members.addBackend(name: id, address: try Self.address(endpoint))
        leases[id] = tracked
        logger.info("drain cancelled: back-end kept", metadata: Self.metadata(tracked.view))
    }

    /// Out of rotation now; once the front-end has nothing in flight there, the lease is
    /// released (retried until the broker hears it) unless the drain was cancelled meanwhile.
    private func startDrain(_ id: String, member: Member?, reason: String) {
        if let member { members.removeBackend(named: member.name) }
        var metadata = leases[id].map { Self.metadata($0.view) } ?? ["lease": "\(id)"]
        metadata["why"] = "\(reason)"
        logger.info("back-end draining", metadata: metadata)
        Task {
            try? await member?.drained()
            await self.releaseWhenDrained(id)
        }
    }

    private func releaseWhenDrained(_ id: String) async {
        while let tracked = leases[id], tracked.draining {
            if tracked.member.map({ !$0.isRemoved }) ?? false { return }  // Cancelled and re-added.
            do {
                let view = try await commands.release(lease: id, LeaseChangeRequest(reason: "nothing in flight from \(configuration.frontend)"))
                leases[id]?.view = view
                leases[id]?.scalingDown = false  // Released: no longer cancellable.
                logger.info("lease released", metadata: Self.metadata(view))
                return
            } catch let error as BrokerClientError where error.statusCode == 404 {
                leases[id] = nil
                return
            } catch {
                complain("cannot release a drained lease; retrying", error)
                try? await Task.sleep(for: .milliseconds(500))
            }
        }
    }

    // MARK: Helpers

    /// For log lines about a lease: its id, host and state (the logger adds service and front-end).
    static func metadata(_ view: LeaseView) -> Logger.Metadata {
        var metadata: Logger.Metadata = ["lease": "\(view.id)", "state": "\(view.state.rawValue)"]
        if let host = view.host { metadata["host"] = "\(host)" }
        return metadata
    }

    static func address(_ endpoint: String) throws -> SocketAddress {
        guard let colon = endpoint.lastIndex(of: ":"), let port = Int(endpoint[endpoint.index(after: colon)...]) else {
            throw SocketAddressError.unsupported
        }
        return try SocketAddress.makeAddressResolvingHost(String(endpoint[..<colon]), port: port)
    }

    /// Logs a broker problem at most once per 5 s, so an outage does not flood the log.
    private func complain(_ what: String, _ error: any Error) {
        let now = ContinuousClock.now
        if let last = lastComplaint, now - last < .seconds(5) { return }
        lastComplaint = now
        logger.warning("\(what)", metadata: ["error": "\(error)"])
    }
}
