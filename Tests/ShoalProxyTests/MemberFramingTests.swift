import NIOCore
import NIOHTTP1
import ShoalProxy
import ShoalTesting
import Testing

/// Members' answers go to the client as bytes, framed by the relay's own reader: every framing
/// HTTP/1.1 allows, split across reads, with hop-by-hop headers dropped, through a real relay
/// over real sockets.
extension ProxyTests {
    @Suite struct MemberFraming {
        static let answers: [String: ScriptedMember.Answer] = [
            "/chunked": .init(pieces: [
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n",
                "\r\n5;ext=1\r\nhello\r\n",
                "6\r\n world\r\n0\r\nx-trailer: yes\r\n\r\n",
            ]),
            "/length-split": .init(pieces: ["HTTP/1.1 200 OK\r\ncont", "ent-length: 10\r\n\r\n01234", "56789"]),
            "/until-close": .init(pieces: ["HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nall of ", "this"], closeAfter: true),
            "/interim": .init(pieces: ["HTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\n", "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"]),
            "/hop-by-hop": .init(pieces: [
                "HTTP/1.1 200 OK\r\nConnection: x-private\r\nx-private: secret\r\nKeep-Alive: timeout=5\r\nProxy-Foo: 1\r\nx-end: kept\r\ncontent-length: 0\r\n\r\n",
            ]),
            "/te-and-length": .init(pieces: ["HTTP/1.1 200 OK\r\ncontent-length: 99\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n"]),
            "/no-content": .init(pieces: ["HTTP/1.1 204 No Content\r\nx-a: 1\r\n\r\n"]),
            "/head": .init(pieces: ["HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n"]),
            "/malformed": .init(pieces: ["HTTP/1.1 2OO OK\r\ncontent-length: 0\r\n\r\n"]),
            "/bad-chunk": .init(pieces: ["HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello-too-long\r\n0\r\n\r\n"]),
        ]

        /// A relay in front of a ``ScriptedMember`` with ``answers``, for `body`.
        static func withRelay(_ body: (HTTPRelayServer, ScriptedMember) async throws -> Void) async throws {
            let member = try await ScriptedMember(answers)
            let relay = HTTPRelayServer.serviceManager(local: member.channel.localAddress!, configuration: testConfiguration(), logger: LogCapture().logger)
            try await relay.start()
            do {
                try await body(relay, member)
            } catch {
                await relay.shutdown()
                try await member.close()
                throw error
            }
            await relay.shutdown()
            try await member.close()
        }

        /// One keep-alive client connection, one pooled member connection, every framing.
        @Test func everyFramingReachesAnHTTP11ClientIntact() async throws {
            try await Self.withRelay { relay, member in
                let expected: [(request: String, answer: String)] = [
                    ("GET /chunked", "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nx-trailer: yes\r\n\r\n"),
                    ("GET /length-split", "HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n0123456789"),
                    ("GET /interim", "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"),
                    ("GET /hop-by-hop", "HTTP/1.1 200 OK\r\nx-end: kept\r\ncontent-length: 0\r\n\r\n"),
                    ("GET /te-and-length", "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n"),
                    ("GET /no-content", "HTTP/1.1 204 No Content\r\nx-a: 1\r\n\r\n"),
                    ("HEAD /head", "HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n"),
                ]
                let (answers, last) = try await RawConnection.with(port: relay.port) { connection in
                    var answers: [String] = []
                    for (request, answer) in expected {
                        let offset = connection.received.utf8.count
                        try await connection.send("\(request) HTTP/1.1\r\nHost: a\r\n\r\n")
                        answers.append(try await connection.read(after: offset, endingWith: String(answer.suffix(12))))
                    }
                    let offset = connection.received.utf8.count
                    try await connection.send("GET /until-close HTTP/1.1\r\nHost: a\r\n\r\n")
                    return (answers, String(decoding: try await connection.readToEnd().utf8.dropFirst(offset), as: UTF8.self))
            }
            #expect(answers == expected.map(\.answer))
            // Ended by the member's close, so the client's connection ends too.
            #expect(last == "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nall of this")
            #expect(member.connectionsAccepted == 1)
            }
        }

        @Test func http10ClientGetsAChunkedAnswerWithoutItsChunks() async throws {
            try await Self.withRelay { relay, _ in
                let raw = try await RawConnection.with(port: relay.port) { connection in
                    try await connection.send("GET /chunked HTTP/1.0\r\n\r\n")
                    return try await connection.readToEnd()
                }
                #expect(raw == "HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\n\r\nhello world")
            }
        }

        @Test func malformedAnswersGet502OrACutConnection() async throws {
            try await Self.withRelay { relay, _ in
                let malformed = try await HTTPTestConnection.with(port: relay.port) { try await $0.request(.GET, "/malformed") }
                #expect(malformed.status == .badGateway)
                #expect(malformed.headers.first(name: "x-shoal-error") == "member-unreachable")
                // The head was out before the body went wrong: the only honest signal left is the close.
                let cut = try await RawConnection.with(port: relay.port) { connection in
                    try await connection.send("GET /bad-chunk HTTP/1.1\r\nHost: a\r\n\r\n")
                    return try await connection.readToEnd()
                }
                #expect(cut.hasPrefix("HTTP/1.1 200 OK\r\n"))
                #expect(!cut.hasSuffix("0\r\n\r\n"))
            }
        }
    }
}
