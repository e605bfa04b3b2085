import Glibc
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import ShoalCore
import Synchronization

/// The data path's HTTP/1.1 relay: one listening port, keep-alive client connections, and
/// keep-alive pools to the members, with bodies streamed both ways under backpressure.
///
/// The same relay serves both ends of Shoal's data path; they differ only in their
/// ``MemberTable`` and ``Admission``:
/// - the front-end's **service manager** (``serviceManager(local:dispatcher:configuration:group:logger:)``):
///   members are the local instance and the leased back-ends, chosen by ``ShoalCore/Dispatcher``;
///   admission only counts;
/// - a back-end's **worker** (``worker(upstream:limits:configuration:group:logger:)``): one
///   member, the local service instance; admission caps concurrency with a bounded queue and
///   drains on order.
///
/// A connection is accepted, served and relayed on one event loop: each loop has its own
/// listening socket on the shared port (`SO_REUSEPORT`; the kernel spreads connections over
/// them), its own copy of the member list, its own pool and one timer for every deadline, so
/// neither a new connection nor a request takes a lock or hops a thread. (With NIO's single
/// acceptor, a connection handed to another loop takes three thread hops before its first read,
/// each one waking a sleeping thread.)
public final class HTTPRelayServer: Sendable {
    private enum State {
        case idle
        case starting
        case listening([any Channel])
        case stopped
    }

    public let configuration: RelayConfiguration
    /// Where requests go; change it at any time.
    public let members: MemberTable
    /// What is let in; drain it to stop taking requests.
    public let admission: Admission
    public var statistics: RelayStatistics { shared.statistics }

    private let shared: RelayShared
    private let group: any EventLoopGroup
    private let loops = NIOLockedValueBox<[ObjectIdentifier: NIOLoopBound<RelayLoop>]>([:])
    private let state = NIOLockedValueBox(State.idle)

    /// A relay over `members` and `admission`. Call ``start()`` to listen.
    public init(
        configuration: RelayConfiguration = RelayConfiguration(),
        members: MemberTable,
        admission: Admission = Admission(),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger
    ) {
        self.configuration = configuration
        self.members = members
        self.admission = admission
        self.group = group
        self.shared = RelayShared(configuration: configuration, members: members, admission: admission, logger: logger)
    }

    /// The front-end's service manager: the local instance (if any) while there is no back-end;
    /// add back-ends with ``MemberTable/addBackend(name:address:)``.
    public static func serviceManager(
        local: SocketAddress?,
        dispatcher: Dispatcher = Dispatcher(thresholds: LoadThresholds()),
        configuration: RelayConfiguration = RelayConfiguration(),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger
    ) -> HTTPRelayServer {
        HTTPRelayServer(
            configuration: configuration, members: MemberTable(local: local, dispatcher: dispatcher),
            admission: Admission(), group: group, logger: logger)
    }

    /// A back-end's worker: relays to exactly one upstream (the service instance PVM started),
    /// at most `limits.maxConcurrent` at once, `limits.maxQueued` more waiting, `503` beyond.
    /// It keeps the `X-Forwarded-Proto` the front-end set (``RelayConfiguration/trustForwardedProto``).
    public static func worker(
        upstream: SocketAddress,
        limits: Admission.Limits,
        configuration: RelayConfiguration = RelayConfiguration(),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger
    ) -> HTTPRelayServer {
        var configuration = configuration
        configuration.trustForwardedProto = true
        return HTTPRelayServer(
            configuration: configuration, members: MemberTable(local: upstream),
            admission: Admission(limits: limits), group: group, logger: logger)
    }

    /// The address the relay listens on, once started.
    public var localAddress: SocketAddress? {
        state.withLockedValue { state in
            if case .listening(let listeners) = state { return listeners.first?.localAddress }
            return nil
        }
    }

    /// Starts listening on ``RelayConfiguration/host``:``RelayConfiguration/port``; returns the
    /// bound address (the port is the chosen one when configured as 0). With
    /// ``RelayConfiguration/tls`` the files are loaded first: a bad pair throws and nothing listens.
    @discardableResult
    public func start() async throws -> SocketAddress {
        try state.withLockedValue { state in
            guard case .idle = state else { throw ServerError.alreadyStarted }
            state = .starting
        }
        do {
            let tls = try configuration.tls.map { try Self.makeTLSContext($0, serviceProtocol: configuration.serviceProtocol) }
            let listeners = try await listen(tls: tls)
            state.withLockedValue { $0 = .listening(listeners) }
            guard let address = listeners.first?.localAddress else { throw ServerError.noLocalAddress }
            shared.logger.info("relay listening", metadata: ["address": "\(address)"])
            return address
        } catch {
            state.withLockedValue { $0 = .idle }
            throw error
        }
    }

    /// One listening socket per event loop, all on the configured address; a connection stays
    /// on the loop whose socket accepted it.
    private func listen(tls: NIOSSLContext?) async throws -> [any Channel] {
        var address = try SocketAddress.makeAddressResolvingHost(configuration.host, port: configuration.port)
        if configuration.port != 0 {
            // SO_REUSEPORT would let these sockets join a port another relay still listens on
            // (and quietly share its traffic); a plain bind first fails on it, with EADDRINUSE.
            try await ServerBootstrap(group: group).serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .bind(to: address).get().close()
        }
        var listeners: [any Channel] = []
        do {
            for eventLoop in group.makeIterator() {
                let listener = try await bootstrap(on: eventLoop, tls: tls).bind(to: address).get()
                listeners.append(listener)
                // Port 0: the first socket's port (the kernel never picks a port already shared).
                address = listener.localAddress ?? address
            }
        } catch {
            for listener in listeners { try? await listener.close() }
            throw error
        }
        return listeners
    }

    private func bootstrap(on eventLoop: any EventLoop, tls: NIOSSLContext?) -> ServerBootstrap {
        let shared = self.shared
        let loops = self.loops
        return ServerBootstrap(group: eventLoop, childGroup: eventLoop)
            .serverChannelOption(.backlog, value: configuration.backlog)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(ChannelOptions.socket(SocketOptionLevel(SOL_SOCKET), SO_REUSEPORT), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        // Below everything: the relay reads and writes plain bytes either way.
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls))
                    }
                    try Self.loop(for: channel.eventLoop, in: loops, shared: shared).configure(clientChannel: channel)
                }
            }
    }

    /// The drain order (the worker's, or a front-end's before it stops): new requests get `503`
    /// with `Connection: close`, connections close as their answers finish, and this returns
    /// once every admitted or queued request has finished.
    ///
    /// The listener stays open: a connection refused would look to the front-end like a dead
    /// member (and be reported as one), while a `503` says exactly what is going on. The
    /// front-end has stopped routing here before the drain order (the paper's step order), so in
    /// practice nothing new arrives.
    ///
    /// Open tunnels (upgraded connections such as WebSockets) are in flight until either side
    /// closes them: the drain waits for them for up to ``RelayConfiguration/shutdownGracePeriod``
    /// (the manifest's `drain_timeout`), then closes them.
    public func drain() async throws {
        admission.beginDrain()
        let drained = try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask { [admission] in
                try await admission.drained()
                return true
            }
            group.addTask { [configuration] in
                try await Task.sleep(for: .nanoseconds(configuration.shutdownGracePeriod.nanoseconds))
                return false
            }
            defer { group.cancelAll() }
            return try await group.next() ?? true
        }
        if !drained {
            let loops = self.loops.withLockedValue { Array($0.values) }
            for bound in loops {
                try? await bound.eventLoop.submit { bound.value.closeTunnels() }.get()
            }
            try await admission.drained()
        }
    }

    /// Graceful shutdown: stops accepting, lets every in-flight request finish (for at most
    /// `gracePeriod`; then closes what is left), closes idle connections and the pools.
    public func shutdown(gracePeriod: TimeAmount = .seconds(30)) async {
        let listeners: [any Channel] = state.withLockedValue { state in
            defer { state = .stopped }
            if case .listening(let listeners) = state { return listeners }
            return []
        }
        shared.isStopping.store(true, ordering: .relaxed)
        for listener in listeners { try? await listener.close() }

        let loops = self.loops.withLockedValue { Array($0.values) }
        var closings: [EventLoopFuture<Void>] = []
        for bound in loops {
            if let futures = try? await bound.eventLoop.submit({ bound.value.beginStopping() }).get() {
                closings += futures
            }
        }
        if !closings.isEmpty {
            let eventLoop = group.next()
            let forceClose = eventLoop.scheduleTask(in: gracePeriod) {
                for bound in loops { bound.eventLoop.execute { bound.value.closeAllClients() } }
            }
            try? await EventLoopFuture.andAllComplete(closings, on: eventLoop).get()
            forceClose.cancel()
        }
        for bound in loops {
            try? await bound.eventLoop.submit { bound.value.stop() }.get()
        }
        shared.logger.info("relay stopped")
    }

    /// This relay's state for `eventLoop`, made on first use. Called on `eventLoop`.
    private static func loop(
        for eventLoop: any EventLoop,
        in loops: NIOLockedValueBox<[ObjectIdentifier: NIOLoopBound<RelayLoop>]>,
        shared: RelayShared
    ) -> RelayLoop {
        let key = ObjectIdentifier(eventLoop)
        let (bound, isNew) = loops.withLockedValue { loops in
            if let bound = loops[key] { return (bound, false) }
            let bound = NIOLoopBound(RelayLoop(eventLoop: eventLoop, shared: shared), eventLoop: eventLoop)
            loops[key] = bound
            return (bound, true)
        }
        if isNew { bound.value.start(bound: bound) }
        return bound.value
    }

    enum ServerError: Error, CustomStringConvertible {
        case alreadyStarted
        case noLocalAddress
        case badTLSFile(String, String)

        var description: String {
            switch self {
            case .alreadyStarted: "the relay was already started"
            case .noLocalAddress: "the listening socket has no local address"
            case .badTLSFile(let path, let reason): "cannot serve TLS with '\(path)': \(reason)"
            }
        }
    }
}
