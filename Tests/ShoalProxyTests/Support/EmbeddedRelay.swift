import Logging
import NIOCore
import NIOEmbedded
@testable import ShoalProxy

/// One relay event loop on an `EmbeddedEventLoop`: a client connection and the member
/// connections it opens are `EmbeddedChannel`s, and time moves only when a test says so
/// (``advance(by:)``), so every timeout is tested without waiting.
final class EmbeddedRelay {
    /// The member connections the relay opened, in order.
    final class Opened {
        var channels: [EmbeddedChannel] = []
    }

    let loop = EmbeddedEventLoop()
    let configuration: RelayConfiguration
    let members: MemberTable
    let admission: Admission
    let relayLoop: RelayLoop
    let opened = Opened()
    let client: EmbeddedChannel

    init(limits: Admission.Limits? = nil, _ change: (inout RelayConfiguration) -> Void = { _ in }) throws {
        var configuration = RelayConfiguration()
        configuration.timerResolution = .milliseconds(100)
        change(&configuration)
        self.configuration = configuration
        members = MemberTable(local: try SocketAddress(ipAddress: "127.0.0.1", port: 9))
        admission = Admission(limits: limits)
        let shared = RelayShared(configuration: configuration, members: members, admission: admission,
                                 logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        let loop = loop
        let opened = opened
        relayLoop = RelayLoop(eventLoop: loop, shared: shared) { member in
            let channel = EmbeddedChannel(loop: loop)
            channel.connect(to: member.address, promise: nil)
            opened.channels.append(channel)
            return loop.makeSucceededFuture(channel)
        }
        relayLoop.start(bound: NIOLoopBound(relayLoop, eventLoop: loop))
        client = EmbeddedChannel(loop: loop)
        // Connected first, as an accepted channel is: the relay reads the client's address.
        client.connect(to: try SocketAddress(ipAddress: "127.0.0.2", port: 40000), promise: nil)
        try relayLoop.configure(clientChannel: client)
    }

    /// Bytes from the client.
    func send(_ text: String) throws {
        try client.writeInbound(ByteBuffer(string: text))
    }

    /// The client half-closes its side.
    func clientClosesInput() {
        client.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
    }

    /// What the client received since the last read.
    var received: String {
        get throws {
        var text = ""
        while let buffer = try client.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
        return text
        }
    }

    /// What member connection `index` received since the last call.
    func memberReceived(_ index: Int) throws -> String {
        guard index < opened.channels.count else { return "" }
        var text = ""
        while let buffer = try opened.channels[index].readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
        return text
    }

    /// Member connection `index` answers.
    func memberAnswers(_ index: Int, _ text: String) throws {
        try opened.channels[index].writeInbound(ByteBuffer(string: text))
    }

    /// The manual clock: runs the loop's timer ticks up to `now + amount`.
    func advance(by amount: TimeAmount) {
        loop.advanceTime(by: amount)
    }

    var clientIsOpen: Bool { client.isActive }

    func finish() {
        _ = try? client.finish()
        for channel in opened.channels { _ = try? channel.finish() }
        relayLoop.stop()
    }
}

/// `200 OK` with `body`, framed by length.
func okResponse(_ body: String = "hi", headers: String = "") -> String {
    "HTTP/1.1 200 OK\r\ncontent-length: \(body.utf8.count)\r\n\(headers)\r\n\(body)"
}
