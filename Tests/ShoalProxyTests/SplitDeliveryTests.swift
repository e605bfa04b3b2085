#if canImport(Glibc)
import Glibc
#endif
import Foundation
import NIOCore
import ShoalProxy
import ShoalTesting
import Testing

/// The relay's request state machine (``RequestReader`` inside the client handler) over a real
/// socket, with the client's bytes split at arbitrary points: a pipelined keep-alive script gets
/// the same answers, one per request and in order, however its bytes are cut into writes; a
/// client that half-closes gets its complete requests answered and a cut-short one refused (or
/// the connection closed), never a hang, and the member's in-flight count returns to zero.
extension ProxyTests {
    @Suite struct SplitDelivery {
        /// GET, GET after empty lines, HEAD, POST with a length, POST chunked (with an extension
        /// and a trailer), and a last GET asking to close. `isHEAD` marks answers without a body.
        static let script: [(request: String, isHEAD: Bool)] = [
            ("GET /doc?size=11 HTTP/1.1\r\nHost: a\r\n\r\n", false),
            ("\r\n\r\nGET /doc?size=22 HTTP/1.1\r\nHost: a\r\n\r\n", false),
            ("HEAD /doc?size=33 HTTP/1.1\r\nHost: a\r\n\r\n", true),
            ("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\nhello, relay", false),
            ("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nchunk\r\n7\r\ned body\r\n0\r\nX-Trailer: t\r\n\r\n", false),
            ("GET /doc?size=44 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", false),
        ]

        static func relay(_ web: WebServer) async throws -> HTTPRelayServer {
            let relay = HTTPRelayServer.serviceManager(
                local: web.address,
                configuration: testConfiguration {
                    $0.requestHeadTimeout = .milliseconds(800)
                    $0.requestBodyIdleTimeout = .milliseconds(800)
                },
                logger: LogCapture().logger)
            try await relay.start()
            return relay
        }

        /// `bytes` cut into pieces of `sizes` (cycled).
        static func pieces(_ bytes: [UInt8], sizes: [Int]) -> [[UInt8]] {
            var parts: [[UInt8]] = []
            var offset = 0
            while offset < bytes.count {
                let end = min(bytes.count, offset + sizes[parts.count % sizes.count])
                parts.append(Array(bytes[offset..<end]))
                offset = end
            }
            return parts
        }

        /// Sends each part in its own `send` over a blocking socket (no Nagle; `pause` after every
        /// `pauseEvery` parts), half-closes if asked, and reads until the relay closes. `closed`
        /// is false if it neither closed nor reset within 5 s.
        static func exchange(_ port: Int, _ parts: [[UInt8]], pause: Duration = .milliseconds(1), pauseEvery: Int = 50,
                             halfClose: Bool = false) async throws -> (bytes: [UInt8], closed: Bool) {
            let fd = try LoopbackSocket.connect(port: port, receiveTimeout: .milliseconds(100))
            return await withCheckedContinuation { done in
                Thread.detachNewThread {
                    defer { close(fd) }
                    var one: Int32 = 1
                    setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                    sending: for (index, part) in parts.enumerated() {
                        if index > 0, index % pauseEvery == 0 { Thread.sleep(forTimeInterval: FuzzExchange.seconds(pause)) }
                        var sent = 0
                        while sent < part.count {
                            let count = part[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                            guard count > 0 else { break sending }
                            sent += count
                        }
                    }
                    if halfClose { shutdown(fd, Int32(SHUT_WR)) }
                    let start = ContinuousClock.now
                    var bytes: [UInt8] = []
                    var buffer = [UInt8](repeating: 0, count: 65536)
                    while ContinuousClock.now - start < .seconds(5) {
                        let count = recv(fd, &buffer, buffer.count, 0)
                        if count > 0 {
                            bytes += buffer[..<count]
                        } else if count == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                            return done.resume(returning: (bytes, true))
                        }
                    }
                    done.resume(returning: (bytes, false))
                }
            }
        }

        /// The answers in `bytes`, in order: status line, headers (without `Date` and
        /// `X-Request-Id`, which differ between runs) and body. `nil` if they don't parse whole.
        static func responses(_ bytes: [UInt8], heads: [Bool]) -> [String]? {
            var answers: [String] = []
            var rest = bytes[...]
            for isHEAD in heads where !rest.isEmpty {
                guard let end = rest.firstRange(of: Array("\r\n\r\n".utf8)) else { return nil }
                let lines = String(decoding: rest[..<end.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
                rest = rest[end.upperBound...]
                let kept = lines.filter { !$0.lowercased().hasPrefix("date:") && !$0.lowercased().hasPrefix("x-request-id:") }
                let fields = lines.dropFirst().map { $0.lowercased() }
                var body = ""
                if !isHEAD, let length = fields.first(where: { $0.hasPrefix("content-length:") }).flatMap({ Int($0.dropFirst(15).trimmingCharacters(in: .whitespaces)) }) {
                    guard rest.count >= length else { return nil }
                    body = String(decoding: rest.prefix(length), as: UTF8.self)
                    rest = rest.dropFirst(length)
                } else if !isHEAD, fields.contains("transfer-encoding: chunked") {
                    // Decoded: how the member cuts its chunks follows how the request arrived.
                    while let line = rest.firstRange(of: Array("\r\n".utf8)),
                          let size = Int(String(decoding: rest[..<line.lowerBound], as: UTF8.self), radix: 16) {
                        rest = rest[line.upperBound...]
                        guard rest.count >= size + 2 else { return nil }
                        body += String(decoding: rest.prefix(size), as: UTF8.self)
                        rest = rest.dropFirst(size + 2)
                        if size == 0 { break }
                    }
                }
                answers.append(kept.joined(separator: "\n") + "\n\n" + body)
            }
            return rest.isEmpty ? answers : nil
        }

        @Test func pipelinedScriptGetsTheSameAnswersHoweverItIsSplit() async throws {
            let web = try WebServer()
            let relay = try await Self.relay(web)
            let requests = Self.script.map { Array($0.request.utf8) }
            let whole = Array(requests.joined())
            let splits: [(String, [[UInt8]])] = [
                ("one write", [whole]),
                ("1-byte pieces", Self.pieces(whole, sizes: [1])),
                ("2-byte pieces", Self.pieces(whole, sizes: [2])),
                ("3-byte pieces", Self.pieces(whole, sizes: [3])),
                ("7-byte pieces", Self.pieces(whole, sizes: [7])),
                ("13-byte pieces", Self.pieces(whole, sizes: [13])),
                ("a write per request", requests),
            ]
            var reference: [String]?
            for (name, parts) in splits {
                let (bytes, closed) = try await Self.exchange(relay.port, parts)
                let answers = Self.responses(bytes, heads: Self.script.map(\.isHEAD))
                #expect(closed, "\(name): the relay did not close after the last answer")
                #expect(answers?.count == Self.script.count, "\(name): \(String(decoding: bytes, as: UTF8.self).debugDescription)")
                #expect(answers?.allSatisfy { $0.hasPrefix("HTTP/1.1 200 OK\n") } == true, "\(name)")
                if reference == nil { reference = answers }
                #expect(answers == reference, "\(name) differs from one write")
            }
            let answers = try #require(reference)
            #expect(answers[0].hasSuffix("\n\n0123456789a"))
            #expect(answers[1].hasSuffix("\n\n0123456789abcdefghijkl"))
            #expect(answers[2].lowercased().contains("content-length: 33") && answers[2].hasSuffix("\n\n"))
            #expect(answers[3].hasSuffix("\n\nhello, relay"))
            #expect(answers[4].hasSuffix("\n\nchunked body"))
            #expect(answers[5].lowercased().contains("connection: close"))
            #expect(relay.members.local?.inFlight == 0)
            await relay.shutdown()
            web.stop()
        }

        /// The handler's own rule ("the client half-closed: answer what it asked, then close"),
        /// also for a request pipelined behind the first (its answer once closed the connection).
        @Test(arguments: [1, 2])
        func halfCloseAfterCompleteRequestsAnswersThemThenCloses(count: Int) async throws {
            let web = try WebServer()
            let relay = try await Self.relay(web)
            let requests = Array([Self.script[0].request, Self.script[3].request].prefix(count).joined().utf8)
            let (bytes, closed) = try await Self.exchange(relay.port, [requests], halfClose: true)
            #expect(closed)
            #expect(Self.responses(bytes, heads: Array(repeating: false, count: count))?.count == count,
                    "\(String(decoding: bytes, as: UTF8.self).debugDescription)")
            #expect(String(decoding: bytes, as: UTF8.self).hasPrefix("HTTP/1.1 200 OK\r\n"))
            #expect(relay.members.local?.inFlight == 0)
            await relay.shutdown()
            web.stop()
        }

        @Test(arguments: [
            "GET /doc?size=11 HTTP/1.1\r\nHo",
            "GET /doc?size=11 HTTP/1.1\r\nHost: a\r\n\r",
            "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\nhello",
            "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nchu",
        ])
        func halfCloseMidRequestIsRefusedNeverServed(cut: String) async throws {
            let web = try WebServer()
            let relay = try await Self.relay(web)
            let start = ContinuousClock.now
            let (bytes, closed) = try await Self.exchange(relay.port, [Array(cut.utf8)], halfClose: true)
            let text = String(decoding: bytes, as: UTF8.self)
            #expect(closed)
            #expect(elapsed(since: start) < 0.7, "closed only by a timeout")
            #expect(text.isEmpty || text.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), "\(text.debugDescription)")
            #expect(relay.members.local?.inFlight == 0)
            await relay.shutdown()
            web.stop()
        }

        @Test func headInTwoWritesAndNextHeadSplitAtTheBodyEnd() async throws {
            let web = try WebServer()
            let relay = try await Self.relay(web)
            // A pause well inside the head timeout (800 ms) between the two halves of a head.
            let head = Array("GET /doc?size=11 HTTP/1.1\r\nHost: a\r\n\r\n".utf8)
            let (slow, slowClosed) = try await Self.exchange(relay.port, [Array(head[..<20]), Array(head[20...])],
                                                             pause: .milliseconds(200), pauseEvery: 1, halfClose: true)
            #expect(slowClosed)
            #expect(Self.responses(slow, heads: [false])?.first?.hasSuffix("\n\n0123456789a") == true)

            // The first write ends the POST body and starts the next head; the second finishes it.
            let post = "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\nhello, relay"
            let next = "GET /doc?size=22 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
            for cut in [0, 1, 5, 17, next.utf8.count - 1] {
                let bytes = Array(post.utf8) + Array(next.utf8)
                let split = post.utf8.count + cut
                let parts = [Array(bytes[..<(post.utf8.count - 4)]), Array(bytes[(post.utf8.count - 4)..<split]), Array(bytes[split...])]
                let (answer, closed) = try await Self.exchange(relay.port, parts.filter { !$0.isEmpty },
                                                               pause: .milliseconds(30), pauseEvery: 1)
                let answers = Self.responses(answer, heads: [false, false])
                #expect(closed, "cut \(cut)")
                #expect(answers?.count == 2, "cut \(cut): \(String(decoding: answer, as: UTF8.self).debugDescription)")
                #expect(answers?.first?.hasSuffix("\n\nhello, relay") == true, "cut \(cut)")
                #expect(answers?.last?.hasSuffix("\n\n0123456789abcdefghijkl") == true, "cut \(cut)")
            }
            #expect(relay.members.local?.inFlight == 0)
            await relay.shutdown()
            web.stop()
        }

        /// A pipelined request whose turn comes while its body is still on the way: the part that
        /// waited is sent on at once, and reading resumes for the rest. (Reads held while it waited
        /// once stayed held: the rest of the body was never read and the answer never ended.)
        @Test(arguments: [
            ("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\nhello", ", relay"),
            ("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", "7\r\n, relay\r\n0\r\n\r\n"),
        ])
        func pipelinedRequestWhoseBodyIsStillComing(start: String, rest: String) async throws {
            let web = try WebServer()
            let relay = try await Self.relay(web)
            let first = Array((Self.script[0].request + start).utf8)
            let second = Array((rest + "GET /doc?size=22 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").utf8)
            let (bytes, closed) = try await Self.exchange(relay.port, [first, second], pause: .milliseconds(100), pauseEvery: 1)
            let answers = Self.responses(bytes, heads: [false, false, false])
            #expect(closed)
            #expect(answers?.count == 3, "\(String(decoding: bytes, as: UTF8.self).debugDescription)")
            #expect(answers?[1].hasSuffix("hello, relay") == true)
            #expect(relay.members.local?.inFlight == 0)
            await relay.shutdown()
            web.stop()
        }
    }
}
