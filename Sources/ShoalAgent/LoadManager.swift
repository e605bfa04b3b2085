import Logging
import NIOCore
import ServiceLifecycle
import ShoalAPI
import ShoalCore
import ShoalProxy
import ShoalClient

/// The front-end's load manager: the plumbing around ``FrontendReconciler``, which decides.
///
/// It reads the members' load and the clock, tells the reconciler what happened (the broker's
/// status, each broker answer, a member drained, a tick) and carries out the actions it returns:
/// members added to or removed from the ``MemberTable``, calls to the broker. It follows the
/// broker's event log so a revocation or preemption takes a member out of rotation at once.
///
/// The service manager never waits for it: while the broker is unreachable, requests keep
/// going to the members there are, and the reconciler has the calls sent again.
public actor LoadManager: Service {
    public struct Configuration: Sendable {
        public var frontend: String
        public var manifest: ServiceManifest
        /// Absolute path of the manifest: the broker and the workers read it.
        public var manifestPath: String
        /// How often the policy looks at the levels.
        public var interval: Duration = .milliseconds(100)
        /// How long the back-ends stay Low, on average, before one is given back.
        public var holdTime: Duration = .seconds(5)
        /// Which rule decides the number of back-ends, and a reference policy's target (nil: High).
        public var scaling: ScalingRule = .shoal
        public var scalingTarget: Double?

        public init(frontend: String, manifest: ServiceManifest, manifestPath: String) {
            self.frontend = frontend
            self.manifest = manifest
            self.manifestPath = manifestPath
        }
    }

    /// A member out of rotation, to be watched until the front-end has nothing in flight there.
    struct DrainWait: Sendable {
        var lease: LeaseID
        var drain: Int
        var member: Member
    }

    private let configuration: Configuration
    private let members: MemberTable
    private let commands: BrokerClient
    private let eventFeed: BrokerClient
    private let logger: Logger
    private let metrics: FrontendMetrics?
    private let clock: @Sendable () -> Timestamp
    private var reconciler: FrontendReconciler
    /// Members removed for a drain, until their `waitForDrain` comes.
    private var outOfRotation: [LeaseID: Member] = [:]
    /// Drains to watch; `run()` gives each one a child task.
    private let drainWaits: AsyncStream<DrainWait>
    private let drainWaitSink: AsyncStream<DrainWait>.Continuation
    private var lastComplaint: Timestamp?
    /// Each lease's secret, from the broker's answers to this front-end: presented to its
    /// worker on every request. The reconciler decides without it; only the member needs it.
    private var leaseSecrets: [LeaseID: LeaseSecret] = [:]

    /// `clock`: the wall clock unless a test passes its own.
    public init(
        configuration: Configuration, members: MemberTable, commands: BrokerClient, eventFeed: BrokerClient,
        metrics: FrontendMetrics? = nil, logger: Logger, clock: @escaping @Sendable () -> Timestamp = { .now() }
    ) {
        self.configuration = configuration
        self.members = members
        self.commands = commands
        self.eventFeed = eventFeed
        self.metrics = metrics
        self.clock = clock
        var logger = logger
        logger[metadataKey: "service"] = "\(configuration.manifest.name)"
        logger[metadataKey: "frontend"] = "\(configuration.frontend)"
        self.logger = logger
        let manifest = configuration.manifest
        reconciler = FrontendReconciler(configuration: .init(
            frontend: configuration.frontend, thresholds: manifest.thresholds, backends: manifest.backends,
            holdTime: configuration.holdTime, scaling: configuration.scaling, scalingTarget: configuration.scalingTarget,
            local: manifest.local))
        (drainWaits, drainWaitSink) = AsyncStream.makeStream(of: DrainWait.self)
    }

    /// In the front-end's `ServiceGroup` (before the relay, so it stops after the relay has let
    /// its in-flight requests finish): manages the leases until graceful shutdown, then gives
    /// every lease back.
    public func run() async {
        await cancelWhenGracefulShutdown { await self.manage() }
        await giveBackAll()
    }

    /// Manages the leases until cancelled. Every task it starts, including each drain watch,
    /// ends with it.
    func manage() async {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.controlLoop() }
            group.addTask { await self.heartbeatLoop() }
            group.addTask { await self.followEvents() }
            // One child per member being drained: no watch outlives run().
            for await wait in drainWaits {
                group.addTask { await self.watch(wait) }
            }
        }
    }

    /// The front-end is stopping and has finished its in-flight requests: every lease goes
    /// back now, rather than waiting out its TTL (see ``FrontendReconciler/frontendStopping()``).
    func giveBackAll() async {
        await handle { $0.frontendStopping() }
    }

    // MARK: Loops

    private func controlLoop() async {
        while (try? await Task.sleep(for: configuration.interval)) != nil {
            let load = FrontendReconciler.MeasuredLoad(
                localInFlight: members.local?.inFlight ?? 0,
                backends: members.backends.map { .init(name: $0.name, inFlight: $0.inFlight) })
            let now = clock()
            await handle { $0.loadMeasured(load, now: now) }
        }
    }

    private func heartbeatLoop() async {
        while !Task.isCancelled {
            await synchronize()
            try? await Task.sleep(for: reconciler.heartbeatInterval)
        }
    }

    /// Long-polls the broker's event log; an event that concerns this front-end makes it
    /// synchronize at once.
    private func followEvents() async {
        var cursor: Int64 = -1
        while !Task.isCancelled {
            do {
                let page = try await eventFeed.events(after: cursor, limit: 500, wait: .seconds(20))
                let concernsUs = page.events.contains { reconciler.concerns(lease: $0.lease.map { LeaseID($0) }, host: $0.host) }
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

    /// Reports the member drained once the front-end has nothing in flight there; a cancelled
    /// wait (run() ending) reports nothing.
    private func watch(_ wait: DrainWait) async {
        do {
            try await wait.member.drained()
        } catch {
            return
        }
        await handle { $0.memberDrained(lease: wait.lease, drain: wait.drain) }
    }

    /// Registers or renews (heartbeat), and hands the broker's answer to the reconciler.
    private func synchronize() async {
        let renewing = reconciler.isRegistered
        let status: FrontendStatus
        do {
            if renewing {
                status = try await commands.heartbeat(frontend: configuration.frontend, Heartbeat(requestsServed: members.requestsAnswered))
            } else {
                status = try await commands.register(FrontendRegistration(name: configuration.frontend, manifestPath: configuration.manifestPath))
                logger.info("registered with the broker", metadata: ["leases": "\(status.leases.count)"])
            }
        } catch let error as BrokerClientError where renewing && error.statusCode == 404 {
            complain("the broker no longer knows this front-end; registering again", error)
            await handle { $0.brokerForgotUs() }
            return
        } catch {
            complain("cannot reach the broker; serving with the members there are", error)
            await handle { $0.brokerUnreachable() }
            return
        }
        leaseSecrets = [:]
        learnSecrets(status.leases)
        let brokerStatus = FrontendReconciler.BrokerStatus(
            leases: status.leases.map(FrontendReconciler.LeaseStatus.init), leaseTTL: .milliseconds(status.leaseTTLMilliseconds))
        let now = clock()
        await handle { $0.brokerStatusArrived(brokerStatus, now: now) }
    }

    // MARK: Carrying out the reconciler's actions

    /// Tells the reconciler what happened, then carries out what it returns, in order.
    private func handle(_ event: (inout FrontendReconciler) -> [FrontendReconciler.Action]) async {
        let actions = event(&reconciler)
        metrics?.leasesChanged(reconciler.leaseStates)
        for action in actions {
            await perform(action)
        }
    }

    private func perform(_ action: FrontendReconciler.Action) async {
        switch action {
        case .addMember(let lease, let endpoint):
            do {
                try members.addBackend(name: lease.rawValue, address: try Self.address(endpoint), leaseSecret: leaseSecrets[lease])
                logger.info("back-end added", metadata: metadata(lease, ["endpoint": "\(endpoint)"]))
            } catch {
                complain("cannot route to back-end \(lease) at \(endpoint)", error)
                await handle { $0.memberCouldNotBeAdded(lease: lease) }
            }

        case .removeMember(let lease, let abandoningInFlight, let reason):
            guard let member = members.removeBackend(named: lease.rawValue, abandoningInFlight: abandoningInFlight) else { return }
            if abandoningInFlight {
                logger.notice("back-end removed: \(reason)", metadata: metadata(lease))
            } else {
                outOfRotation[lease] = member
                logger.info("back-end draining", metadata: metadata(lease, ["why": "\(reason)"]))
            }

        case .waitForDrain(let lease, let drain):
            if let member = outOfRotation.removeValue(forKey: lease) {
                drainWaitSink.yield(DrainWait(lease: lease, drain: drain, member: member))
            } else {
                await handle { $0.memberDrained(lease: lease, drain: drain) }  // It was not in the table: nothing in flight.
            }

        case .acquire(let reason):
            do {
                let view = try await commands.acquire(AcquireRequest(frontend: configuration.frontend, reason: reason))
                metrics?.leaseRequested(view.state == .requested ? "queued" : "granted")
                learnSecrets([view])
                let now = clock()
                await handle { $0.leaseAcquired(.init(view), now: now) }
                logger.info("lease asked for", metadata: metadata(LeaseID(view.id), ["why": "\(reason)"]))
            } catch let error as BrokerClientError where error.statusCode == 409 {
                metrics?.leaseRequested("denied")
                logger.debug("lease denied", metadata: ["why": "\(error)"])
                await handle { $0.leaseDenied() }
            } catch {
                metrics?.leaseRequested("failed")
                complain("cannot ask the broker for a back-end", error)
                await handle { $0.acquireFailed() }
            }

        case .drain(let lease, let reason):
            do {
                let view = try await commands.drain(lease: lease.rawValue, LeaseChangeRequest(reason: reason))
                await handle { $0.drainAccepted(.init(view)) }
            } catch {
                complain("cannot drain lease \(lease)", error)
                await handle { $0.drainFailed(lease: lease) }
            }

        case .cancelDrain(let lease, let reason):
            do {
                let view = try await commands.cancelDrain(lease: lease.rawValue, LeaseChangeRequest(reason: reason))
                logger.info("drain cancelled: back-end kept", metadata: metadata(lease, ["why": "\(reason)"]))
                await handle { $0.drainCancelAccepted(.init(view)) }
            } catch {
                complain("cannot cancel a drain", error)
                await handle { $0.drainCancelFailed(lease: lease) }
            }

        case .release(let lease, let reason):
            do {
                let view = try await commands.release(lease: lease.rawValue, LeaseChangeRequest(reason: reason))
                logger.info("lease released", metadata: metadata(lease, ["why": "\(reason)"]))
                await handle { $0.releaseAccepted(.init(view)) }
            } catch let error as BrokerClientError where error.statusCode == 404 {
                await handle { $0.releaseFoundNoLease(lease: lease) }
            } catch {
                complain("cannot release lease \(lease)", error)
                let now = clock()
                await handle { $0.releaseFailed(lease: lease, now: now) }
            }
        }
    }

    // MARK: Helpers

    /// For log lines about a lease: its id, state and host as last known (the logger adds
    /// service and front-end).
    private func metadata(_ id: LeaseID, _ extra: Logger.Metadata = [:]) -> Logger.Metadata {
        var metadata = extra
        metadata["lease"] = "\(id)"
        if let lease = reconciler.lease(id) {
            metadata["state"] = "\(lease.state.rawValue)"
            if let host = lease.host { metadata["host"] = "\(host)" }
        }
        return metadata
    }

    /// Keeps the secrets the broker's answer carries (a broker before them sends none: its
    /// workers want none).
    private func learnSecrets(_ views: [LeaseView]) {
        for view in views {
            if let text = view.secret, let secret = LeaseSecret(text) { leaseSecrets[LeaseID(view.id)] = secret }
        }
    }

    static func address(_ endpoint: String) throws -> SocketAddress {
        guard let colon = endpoint.lastIndex(of: ":"), let port = Int(endpoint[endpoint.index(after: colon)...]) else {
            throw SocketAddressError.unsupported
        }
        return try SocketAddress.makeAddressResolvingHost(String(endpoint[..<colon]), port: port)
    }

    /// Logs a broker problem at most once per 5 s, so an outage does not flood the log.
    private func complain(_ what: String, _ error: any Error) {
        let now = clock()
        if let last = lastComplaint, now - last < .seconds(5) { return }
        lastComplaint = now
        logger.warning("\(what)", metadata: ["error": "\(error)"])
    }
}
