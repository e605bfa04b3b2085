import NIOCore
import ShoalCore
import Synchronization

/// Everything of one relay that belongs to one event loop: the member choice, the connection
/// pool, the client connections and the timer that checks their deadlines. Touched only on that
/// loop, so the request path takes no lock.
final class RelayLoop {
    let eventLoop: any EventLoop
    let shared: RelayShared
    let router: LoopRouter
    let pool: UpstreamPool
    /// The loop's clock read once per timer tick: deadlines are set from it without a system
    /// call. The loop's, not the system's, so tests on an `EmbeddedEventLoop` move it by hand.
    private(set) var now: NIODeadline
    private var connections: [any RelayedConnection] = []
    private var tick: RepeatedTask?
    private var isStopping = false
    /// The first seven bytes of this loop's request ids: the relay's prefix, the loop's digit, `-`.
    private let requestIDPrefix: [UInt8]
    private var requestCount: UInt32 = 0

    init(eventLoop: any EventLoop, shared: RelayShared, connector: UpstreamPool.Connector? = nil) {
        self.eventLoop = eventLoop
        self.shared = shared
        self.router = LoopRouter(table: shared.members)
        self.pool = UpstreamPool(eventLoop: eventLoop, shared: shared, connector: connector)
        self.now = eventLoop.now
        let loopNumber = shared.loopCount.add(1, ordering: .relaxed).oldValue
        requestIDPrefix = shared.requestIDPrefix + [Self.hexDigit(UInt32(loopNumber & 0xF)), UInt8(ascii: "-")]
    }

    /// A new request id, like `3fa9c2-1b7`: unique within the relay (per loop a counter), random
    /// across relays, and at most 15 bytes, so Swift keeps it inline with no allocation.
    @inline(__always)
    func nextRequestID() -> String {
        requestCount &+= 1
        var number = requestCount
        var digits = 1
        while number >> (4 * digits) != 0, digits < 8 { digits += 1 }
        let prefix = requestIDPrefix
        return String(unsafeUninitializedCapacity: 15) { buffer in
            for index in 0..<7 { buffer[index] = prefix[index] }
            var index = 7 + digits
            repeat {
                index -= 1
                buffer[index] = Self.hexDigit(number & 0xF)
                number >>= 4
            } while index > 7
            return 7 + digits
        }
    }

    @inline(__always)
    static func hexDigit(_ value: UInt32) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") + UInt8(value) : UInt8(ascii: "a") + UInt8(value - 10)
    }

    /// Starts the timer. `bound` is this loop, for the timer's closure.
    func start(bound: NIOLoopBound<RelayLoop>) {
        let resolution = shared.configuration.timerResolution
        tick = eventLoop.scheduleRepeatedTask(initialDelay: resolution, delay: resolution) { _ in
            bound.value.onTick()
        }
    }

    /// Sets up a new client connection's pipeline: guard, relay.
    func configure(clientChannel channel: any Channel) throws {
        guard !shared.isStopping.load(ordering: .relaxed) else { throw ChannelError.ioOnClosedChannel }
        shared.statistics.clientConnections.add(1, ordering: .relaxed)
        // Set here rather than as the bootstrap's child options, which NIO applies through a
        // chain of futures (4.6 % of a front-end's CPU at 1 000 new connections/s).
        if let options = channel.syncOptions {
            try options.setOption(.tcpOption(.tcp_nodelay), value: 1)
            try options.setOption(.allowRemoteHalfClosure, value: true)
        }
        let sync = channel.pipeline.syncOperations
        if shared.configuration.serviceProtocol == .tcp {
            guard let secret = shared.configuration.leaseSecret else {
                try sync.addHandler(TCPRelayHandler(loop: self))
                return
            }
            // The relay (and with it a connection to the instance) only once the line checks out.
            let statistics = shared.statistics
            try sync.addHandler(LeaseSecretPreambleHandler(
                secret: secret, timeout: shared.configuration.requestHeadTimeout,
                onAccepted: { _ in TCPRelayHandler(loop: self) },
                onRefused: { statistics.countLocalResponse(.forbidden) }))
            return
        }
        // No HTTP codec: the relay handler reads requests from the bytes itself (`RequestReader`,
        // `+Pipelining`) and writes answers as bytes.
        let connectionGuard = ConnectionGuard()
        try sync.addHandler(connectionGuard)
        let relay = ClientRelayHandler(
            loop: self, connectionGuard: connectionGuard, clientAddress: channel.remoteAddress?.ipAddress ?? "unknown")
        try sync.addHandler(relay)
    }

    func register(_ connection: any RelayedConnection) {
        connection.registryIndex = connections.count
        connections.append(connection)
        if isStopping {
            // Accepted just before the listener closed: close once set up, not mid-setup.
            eventLoop.assumeIsolated().execute { _ = connection.quiesce() }
        }
    }

    func unregister(_ connection: any RelayedConnection) {
        let index = connection.registryIndex
        guard index >= 0, index < connections.count, connections[index] === connection else { return }
        let last = connections.removeLast()
        if index < connections.count {
            connections[index] = last
            last.registryIndex = index
        }
        connection.registryIndex = -1
    }

    private func onTick() {
        now = eventLoop.now
        router.refreshIfNeeded()
        pool.sweep(now: now)
        for connection in connections {
            connection.checkDeadline(now: now)
        }
    }

    // MARK: Shutdown

    /// Asks every client connection to close after its current request; returns their close futures.
    func beginStopping() -> [EventLoopFuture<Void>] {
        isStopping = true
        return connections.compactMap { $0.quiesce() }
    }

    /// Closes the connections that are tunnels: upgraded ones, and every TCP-mode one (a drain's time is up).
    func closeTunnels() {
        for connection in connections where connection.isTunnel { connection.closeNow() }
    }

    func closeAllClients() {
        for connection in connections { connection.closeNow() }
    }

    func stop() {
        tick?.cancel()
        tick = nil
        pool.closeAll()
    }
}
