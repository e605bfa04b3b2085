import NIOCore

/// A client connection as its ``RelayLoop`` sees it: an HTTP one (``ClientRelayHandler``) or a
/// TCP-mode one (``TCPRelayHandler``), timed, drained and closed alike.
protocol RelayedConnection: AnyObject {
    /// Its slot in the loop's connection list.
    var registryIndex: Int { get set }
    /// Whether it is a byte tunnel (an upgraded HTTP connection, or any TCP-mode one): open
    /// until either side closes, so a drain closes it when its time is up.
    var isTunnel: Bool { get }
    func checkDeadline(now: NIODeadline)
    /// Finish what is in progress, then close; returns when closed.
    func quiesce() -> EventLoopFuture<Void>?
    func closeNow()
}

extension ClientRelayHandler: RelayedConnection {
    var isTunnel: Bool { machine.tunnel != nil }
}
