import NIOCore
import NIOEmbedded
@testable import ShoalProxy
import Testing

/// The client connection through its real handlers, on `EmbeddedChannel`s with a manual clock:
/// every timeout, drain, stale connection, half-close and pipelining case, with no real wait.
@Suite struct ConnectionOnEmbeddedChannel {
    @Test func relaysARequestAndPoolsTheMemberConnection() throws {
        let relay = try EmbeddedRelay()
        defer { relay.finish() }
        try relay.send("GET /a HTTP/1.1\r\nhost: x\r\n\r\n")
        let forwarded = try relay.memberReceived(0)
        #expect(forwarded.hasPrefix("GET /a HTTP/1.1\r\nhost: x\r\n"))
        #expect(forwarded.contains("x-forwarded-for: 127.0.0.2\r\n"))
        try relay.memberAnswers(0, okResponse("one"))
        #expect(try relay.received == "HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\none")

        try relay.send("GET /b HTTP/1.1\r\nhost: x\r\n\r\n")
        #expect(relay.opened.channels.count == 1)  // The pooled connection carries the second.
        #expect(try relay.memberReceived(0).hasPrefix("GET /b HTTP/1.1"))
        try relay.memberAnswers(0, okResponse("two"))
        #expect(try relay.received.hasSuffix("two"))
        #expect(relay.clientIsOpen)
        #expect(relay.members.local?.inFlight == 0)
    }

    @Test func idleConnectionClosesSilentlyAfterTheIdleTimeout() throws {
        let relay = try EmbeddedRelay { $0.clientIdleTimeout = .seconds(5) }
        defer { relay.finish() }
        relay.advance(by: .milliseconds(4900))
        #expect(relay.clientIsOpen)
        relay.advance(by: .milliseconds(200))
        #expect(!relay.clientIsOpen)
        #expect(try relay.received == "")
    }

    @Test func slowHeadGets408AfterTheHeadTimeoutNotTheIdleOne() throws {
        let relay = try EmbeddedRelay {
            $0.clientIdleTimeout = .seconds(60)
            $0.requestHeadTimeout = .seconds(2)
        }
        defer { relay.finish() }
        relay.advance(by: .seconds(10))
        try relay.send("GET /slow HT")
        relay.advance(by: .milliseconds(1900))
        #expect(relay.clientIsOpen)
        relay.advance(by: .milliseconds(200))
        let answer = try relay.received
        #expect(answer.hasPrefix("HTTP/1.1 408 Request Timeout\r\n"))
        #expect(answer.contains("x-shoal-error: request-timeout"))
        #expect(!relay.clientIsOpen)
        #expect(relay.opened.channels.isEmpty)
    }

    @Test func silentMemberGets504AfterTheResponseHeadTimeout() throws {
        let relay = try EmbeddedRelay { $0.responseHeadTimeout = .seconds(3) }
        defer { relay.finish() }
        try relay.send("POST /x HTTP/1.1\r\ncontent-length: 0\r\n\r\n")
        relay.advance(by: .milliseconds(2900))
        #expect(try relay.received == "")
        relay.advance(by: .milliseconds(200))
        #expect(try relay.received.hasPrefix("HTTP/1.1 504 Gateway Timeout\r\n"))
        #expect(relay.clientIsOpen)  // Keep-alive: the next request may come.
        #expect(!relay.opened.channels[0].isActive)  // Mid-exchange, so not reusable.
        #expect(relay.members.local?.inFlight == 0)
    }

    @Test func stalledAnswerIsCutShortAfterTheBodyIdleTimeout() throws {
        let relay = try EmbeddedRelay { $0.responseBodyIdleTimeout = .seconds(2) }
        defer { relay.finish() }
        try relay.send("GET /big HTTP/1.1\r\n\r\n")
        try relay.memberAnswers(0, "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nfirst part")
        relay.advance(by: .milliseconds(2100))
        #expect(try relay.received.hasSuffix("first part"))
        #expect(!relay.clientIsOpen)  // The close tells the client the answer is cut short.
        #expect(relay.members.local?.inFlight == 0)
    }

    @Test func drainFinishesTheAnswerInProgressThenCloses() throws {
        let relay = try EmbeddedRelay()
        defer { relay.finish() }
        try relay.send("GET /a HTTP/1.1\r\n\r\n")
        relay.admission.beginDrain()
        try relay.memberAnswers(0, okResponse())
        let answer = try relay.received
        #expect(answer.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(answer.contains("connection: close\r\n"))
        #expect(!relay.clientIsOpen)
    }

    @Test func drainingRelayRefusesANewRequestWith503AndCloses() throws {
        let relay = try EmbeddedRelay()
        defer { relay.finish() }
        relay.admission.beginDrain()
        try relay.send("GET /a HTTP/1.1\r\n\r\n")
        let answer = try relay.received
        #expect(answer.hasPrefix("HTTP/1.1 503 Service Unavailable\r\n"))
        #expect(answer.contains("x-shoal-error: draining"))
        #expect(answer.contains("connection: close"))
        #expect(!relay.clientIsOpen)
    }

    @Test func stoppingClosesAnIdleConnectionAtOnceAndABusyOneAfterItsAnswer() throws {
        let relay = try EmbeddedRelay()
        defer { relay.finish() }
        try relay.send("GET /a HTTP/1.1\r\n\r\n")
        _ = relay.relayLoop.beginStopping()
        #expect(relay.clientIsOpen)
        try relay.memberAnswers(0, okResponse())
        #expect(try relay.received.contains("connection: close"))
        #expect(!relay.clientIsOpen)
    }

    @Test func stalePooledConnectionGetsOneFreshConnectionNotCountedAsARetry() throws {
        let relay = try EmbeddedRelay()
        defer { relay.finish() }
        try relay.send("GET /a HTTP/1.1\r\n\r\n")
        _ = try relay.memberReceived(0)
        try relay.memberAnswers(0, okResponse())
        _ = try relay.received
        // The member closes the idle connection just as the relay reuses it.
        try relay.send("GET /b HTTP/1.1\r\n\r\n")
        #expect(try relay.memberReceived(0).hasPrefix("GET /b"))
        _ = try relay.opened.channels[0].close().wait()
        #expect(relay.opened.channels.count == 2)
        #expect(try relay.memberReceived(1).hasPrefix("GET /b"))
        try relay.memberAnswers(1, okResponse("fresh"))
        #expect(try relay.received.hasSuffix("fresh"))
        #expect(relay.relayLoop.shared.statistics.retries == 0)
        #expect(relay.members.local?.isHealthy == true)  // A stale connection is no failure.
    }

    @Test func halfClosedClientGetsItsAnswerThenTheConnectionCloses() throws {
        let relay = try EmbeddedRelay()
        defer { relay.finish() }
        try relay.send("GET /a HTTP/1.1\r\n\r\n")
        relay.clientClosesInput()
        #expect(relay.clientIsOpen)
        try relay.memberAnswers(0, okResponse())
        let answer = try relay.received
        #expect(answer.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(answer.contains("connection: close"))
        #expect(!relay.clientIsOpen)
    }

    @Test func halfCloseMidRequestGets400() throws {
        let relay = try EmbeddedRelay()
        defer { relay.finish() }
        try relay.send("POST /a HTTP/1.1\r\ncontent-length: 10\r\n\r\nabc")
        relay.clientClosesInput()
        // The member had the head and part of the body; the client sees the relay's 400.
        #expect(try relay.received.hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
        #expect(!relay.clientIsOpen)
        #expect(relay.members.local?.inFlight == 0)
    }

    @Test func pipelinedRequestsWaitTheirTurnAndAreAnsweredInOrder() throws {
        let relay = try EmbeddedRelay()
        defer { relay.finish() }
        try relay.send("GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n")
        let first = try relay.memberReceived(0)
        #expect(first.hasPrefix("GET /1"))
        #expect(!first.contains("GET /2"))  // The second waits, unread, for the first's answer.
        try relay.memberAnswers(0, okResponse("one"))
        #expect(try relay.memberReceived(0).hasPrefix("GET /2"))
        try relay.memberAnswers(0, okResponse("two"))
        let answers = try relay.received
        #expect(answers.hasSuffix("one" + okResponse("two")))
        #expect(relay.opened.channels.count == 1)
    }

    @Test func pipelinedRequestsAfterAHalfCloseAreAllAnsweredBeforeTheClose() throws {
        let relay = try EmbeddedRelay()
        defer { relay.finish() }
        try relay.send("GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n")
        relay.clientClosesInput()
        try relay.memberAnswers(0, okResponse("one"))
        #expect(relay.clientIsOpen)
        #expect(!(try relay.received.contains("connection: close")))
        try relay.memberAnswers(0, okResponse("two"))
        #expect(try relay.received.contains("connection: close"))
        #expect(!relay.clientIsOpen)
    }

    @Test func answerBeforeTheBodyEndsDropsTheRestOfTheBodyThenServesTheNext() throws {
        let relay = try EmbeddedRelay()
        defer { relay.finish() }
        try relay.send("POST /early HTTP/1.1\r\ncontent-length: 6\r\n\r\nabc")
        try relay.memberAnswers(0, okResponse("early"))
        #expect(try relay.received.hasSuffix("early"))
        #expect(!relay.opened.channels[0].isActive)  // Mid-request: not reusable.
        try relay.send("def")  // Read and dropped.
        try relay.send("GET /next HTTP/1.1\r\n\r\n")
        #expect(try relay.memberReceived(1).hasPrefix("GET /next"))
        try relay.memberAnswers(1, okResponse("next"))
        #expect(try relay.received.hasSuffix("next"))
    }

    @Test func queuedRequestGets503AfterTheQueueTimeout() throws {
        let relay = try EmbeddedRelay(limits: .init(maxConcurrent: 1, maxQueued: 4, queueTimeout: .seconds(1)))
        defer { relay.finish() }
        // Another connection holds the only turn.
        let other = relay.admission.admit(on: relay.loop)
        guard case .admitted = other else { Issue.record("not admitted"); return }
        try relay.send("GET /a HTTP/1.1\r\n\r\n")
        #expect(relay.admission.queued == 1)
        relay.advance(by: .milliseconds(1100))
        #expect(try relay.received.contains("x-shoal-error: queue-timeout"))
        #expect(relay.admission.queued == 0)
        relay.admission.release()
        #expect(relay.admission.inFlight == 0)
    }
}

/// `Upgrade` on `EmbeddedChannel`s: the handshake forwarded, then a byte tunnel both ways.
@Suite struct UpgradeOnEmbeddedChannel {
    static let upgradeRequest = "GET /chat HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-key: k\r\n\r\n"

    @Test func upgradeIsForwardedOnAFreshConnectionAndA101OpensATunnel() throws {
        let relay = try EmbeddedRelay()
        defer { relay.finish() }
        try relay.send("GET /first HTTP/1.1\r\n\r\n")
        try relay.memberAnswers(0, okResponse())
        _ = try relay.received
        _ = try relay.memberReceived(0)
        // Not on the pooled connection: some servers switch only on a connection's first request.
        try relay.send(Self.upgradeRequest)
        #expect(try relay.memberReceived(0) == "")
        let forwarded = try relay.memberReceived(1)
        #expect(forwarded.contains("upgrade: websocket\r\n"))
        #expect(forwarded.contains("connection: upgrade\r\n"))
        #expect(forwarded.contains("sec-websocket-key: k\r\n"))
        try relay.memberAnswers(1, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nsec-websocket-accept: a\r\n\r\nfirst")
        let answer = try relay.received
        #expect(answer.hasPrefix("HTTP/1.1 101 Switching Protocols\r\n"))
        #expect(answer.contains("Upgrade: websocket\r\n"))
        #expect(answer.contains("connection: upgrade\r\n"))
        #expect(answer.hasSuffix("\r\n\r\nfirst"))
        // Bytes both ways, unread: nothing here is HTTP any more.
        try relay.send("GET / HTTP/9.9 not http")
        #expect(try relay.memberReceived(1) == "GET / HTTP/9.9 not http")
        try relay.memberAnswers(1, "\u{1}\u{2}")
        #expect(try relay.received == "\u{1}\u{2}")
        #expect(relay.members.local?.inFlight == 1)
        relay.advance(by: .seconds(3600))  // No timeout ends a tunnel.
        #expect(relay.clientIsOpen)
        _ = try relay.opened.channels[1].close().wait()
        #expect(!relay.clientIsOpen)
        #expect(relay.members.local?.inFlight == 0)
    }

    @Test func clientClosingATunnelClosesTheMemberSide() throws {
        let relay = try EmbeddedRelay()
        defer { relay.finish() }
        try relay.send(Self.upgradeRequest)
        try relay.memberAnswers(0, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        _ = try relay.client.close().wait()
        #expect(!relay.opened.channels[0].isActive)
        #expect(relay.members.local?.inFlight == 0)
    }

    @Test func aClientThatHalfClosedBeforeThe101HalfClosesTheTunnel() throws {
        let relay = try EmbeddedRelay()
        defer { relay.finish() }
        try relay.send(Self.upgradeRequest)
        relay.clientClosesInput()
        try relay.memberAnswers(0, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        #expect(try relay.received.hasPrefix("HTTP/1.1 101"))
        // EmbeddedChannel closes fully on a half-close: the member's side is closed.
        #expect(!relay.opened.channels[0].isActive)
    }

    @Test func aDeclinedUpgradeIsAnOrdinaryAnswerOnAKeptConnection() throws {
        let relay = try EmbeddedRelay()
        defer { relay.finish() }
        try relay.send(Self.upgradeRequest)
        try relay.memberAnswers(0, okResponse("plain"))
        #expect(try relay.received.hasSuffix("plain"))
        #expect(!relay.opened.channels[0].isActive)  // Not pooled: the member may have stopped parsing HTTP.
        try relay.send("GET /next HTTP/1.1\r\n\r\n")
        #expect(try relay.memberReceived(1).contains("GET /next"))
        try relay.memberAnswers(1, okResponse("next"))
        #expect(try relay.received.hasSuffix("next"))
    }

    @Test func h2cIsNotPassedOn() throws {
        let relay = try EmbeddedRelay()
        defer { relay.finish() }
        try relay.send("GET / HTTP/1.1\r\nconnection: Upgrade, HTTP2-Settings\r\nupgrade: h2c\r\nhttp2-settings: AAM\r\n\r\n")
        let forwarded = try relay.memberReceived(0).lowercased()
        #expect(!forwarded.contains("upgrade"))
        #expect(!forwarded.contains("http2-settings"))
    }

    @Test func an101NobodyAskedForIsRefused() throws {
        let relay = try EmbeddedRelay()
        defer { relay.finish() }
        try relay.send("GET / HTTP/1.1\r\n\r\n")
        try relay.memberAnswers(0, "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n")
        #expect(try relay.received.hasPrefix("HTTP/1.1 502 Bad Gateway"))
    }
}
