import NIOCore
import NIOPosix
import Synchronization

/// Keep-alive connections to the members, for one event loop: a request's client channel and
/// its member channel always share a loop, so nothing here is locked or hops threads.
///
/// Idle connections are kept most-recently-used first (a warm connection is the least likely to
/// have been closed by the member), at most ``RelayConfiguration/maxIdleConnectionsPerMember``
/// per member, and closed after ``RelayConfiguration/pooledConnectionIdleTimeout`` or as soon as
/// their member is removed.
final class UpstreamPool {
    /// Opens a channel to a member in place of TCP (tests hand in `EmbeddedChannel`s).
    typealias Connector = (Member) -> EventLoopFuture<any Channel>

    private let eventLoop: any EventLoop
    private let connector: Connector?
    private let shared: RelayShared
    private let maxIdlePerMember: Int
    private var idle: [ObjectIdentifier: [UpstreamConnection]] = [:]

    init(eventLoop: any EventLoop, shared: RelayShared, connector: Connector? = nil) {
        self.eventLoop = eventLoop
        self.connector = connector
        self.shared = shared
        self.maxIdlePerMember = shared.configuration.maxIdleConnectionsPerMember
    }

    /// An idle connection to `member`, if one is open.
    func checkout(_ member: Member) -> UpstreamConnection? {
        let key = ObjectIdentifier(member)
        while let connection = idle[key]?.popLast() {
            if connection.isActive { return connection }
        }
        return nil
    }

    /// A finished connection, back for reuse, or closed if it can't be reused.
    func checkin(_ connection: UpstreamConnection, now: NIODeadline) {
        connection.exchange = nil
        connection.resumeReads()  // An idle connection keeps reading, to see the member close it.
        let key = ObjectIdentifier(connection.member)
        guard connection.isActive,
            connection.lastResponseKeepsAlive,
            !connection.member.isRemoved,
            idle[key, default: []].count < maxIdlePerMember
        else {
            connection.close()
            return
        }
        connection.idleSince = now
        idle[key, default: []].append(connection)
    }

    /// Forgets a connection the member closed while it was idle.
    func remove(_ connection: UpstreamConnection) {
        let key = ObjectIdentifier(connection.member)
        guard let index = idle[key]?.firstIndex(where: { $0 === connection }) else { return }
        idle[key]?.remove(at: index)
        if idle[key]?.isEmpty == true { idle[key] = nil }
    }

    /// Reads from members may grow to 1 MiB (NIO's default stops at 64 KiB): a large answer
    /// already waiting in the socket is taken in one read and passed on in one write, not eight of
    /// each (in `make bench-dataplane`, 13–18 % less relay CPU per 500 KB answer, 10 % more two-hop
    /// throughput). What one connection holds for a slow client stays bounded at about 1 MiB plus
    /// the client channel's write buffer; reads shrink again when answers are small.
    private static let readBuffers = AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 2048, maximum: 1 << 20)

    /// Opens a new connection to `member` on this loop; `completion` runs on this loop.
    func connect(to member: Member, completion: @escaping (Result<UpstreamConnection, any Error>) -> Void) {
        shared.statistics.upstreamConnections.add(1, ordering: .relaxed)
        if let connector {
            connector(member).assumeIsolated().whenComplete { [weak self] result in
                completion(result.flatMap { channel in
                    Result {
                        let connection = UpstreamConnection(member: member)
                        try channel.pipeline.syncOperations.addHandler(connection)
                        connection.pool = self
                        return connection
                    }
                })
            }
            return
        }
        let configuration = shared.configuration
        ClientBootstrap(group: eventLoop)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(.recvAllocator, value: Self.readBuffers)
            .connectTimeout(configuration.connectTimeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(UpstreamConnection(member: member))
                }
            }
            .connect(to: member.address)
            .assumeIsolated()
            .whenComplete { [weak self] result in
                completion(
                    result.flatMap { channel in
                        Result {
                            let connection = try channel.pipeline.syncOperations.handler(type: UpstreamConnection.self)
                            connection.pool = self
                            return connection
                        }
                    })
            }
    }

    /// Closes idle connections past their timeout or whose member was removed.
    func sweep(now: NIODeadline) {
        let timeout = shared.configuration.pooledConnectionIdleTimeout
        for (key, connections) in idle {
            guard let oldest = connections.first else { continue }
            // The oldest is first: if it is fresh and its member still present, all are.
            guard oldest.member.isRemoved || oldest.idleSince + timeout <= now else { continue }
            let keep = oldest.member.isRemoved ? [] : connections.filter { $0.idleSince + timeout > now }
            idle[key] = keep.isEmpty ? nil : keep
            for connection in connections where !keep.contains(where: { $0 === connection }) {
                connection.close()
            }
        }
    }

    /// Closes every idle connection (shutdown).
    func closeAll() {
        let all = idle.values.flatMap { $0 }
        idle.removeAll()
        for connection in all { connection.close() }
    }
}
