#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOHTTP1
import NIOPosix
import ShoalCore
import Testing

@testable import ShoalProxy

/// The client-side reader on its own: the same requests whether they arrive whole or a few bytes
/// at a time, the right refusal (400, 431, 501) for each way a request can be malformed, and, over
/// a few thousand seeded inputs, the first request read as llhttp (NIO's `HTTPRequestDecoder`, which
/// the relay used before) reads it, never accepted where llhttp refuses it, unless only for a method
/// or target, which can't move where the request ends. Where RequestReader is stricter, it says so.
extension ProxyTests {
    @Suite struct RequestReading {
        /// Feeds `text` in pieces of `step` bytes; one line per request: its head, then ` | `, its
        /// raw body and `<end>` for each ``RequestReader/Event/end``.
        static func read(_ text: String, step: Int) throws(RelayError) -> [String] {
            var reader = RequestReader(maxHeadBytes: 1024, maxHeaderCount: 20)
            let bytes = Array(text.utf8)
            var requests: [String] = []
            for start in stride(from: 0, to: bytes.count, by: step) {
                var buffer = ByteBuffer(bytes: bytes[start..<min(start + step, bytes.count)])
                while let event = try reader.next(&buffer) {
                    switch event {
                    case .head(let head):
                        var line = "\(head.methodName) \(head.target) HTTP/1.\(head.isHTTP10 ? 0 : 1) \(head.keepAlive ? "keep-alive" : "close")"
                        if let length = head.contentLength { line += " length=\(length)" }
                        if head.isChunked { line += " chunked" }
                        if head.expectsContinue { line += " expect" }
                        if let id = head.requestID { line += " id=\(id)" }
                        requests.append(line + " | ")
                    case .body(let slice): requests[requests.count - 1] += String(buffer: slice)
                    case .end:
                        requests[requests.count - 1] += "<end>"
                        reader.nextRequest()
                    }
                }
            }
            return requests
        }

        static let good: [(request: String, read: [String])] = [
            ("GET /doc?size=5 HTTP/1.1\r\nHost: a\r\n\r\n", ["GET /doc?size=5 HTTP/1.1 keep-alive | <end>"]),
            ("HEAD / HTTP/1.1\r\nHost: a\r\n\r\n", ["HEAD / HTTP/1.1 keep-alive | <end>"]),
            ("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", ["POST /echo HTTP/1.1 keep-alive length=5 | hello<end>"]),
            ("POST /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;name=\"v\"\r\nabc\r\nA\r\n0123456789\r\n0;x\r\nX-T: 1\r\n\r\n",
             ["POST /up HTTP/1.1 keep-alive chunked | 3;name=\"v\"\r\nabc\r\nA\r\n0123456789\r\n0;x\r\nX-T: 1\r\n\r\n<end>"]),
            ("GET / HTTP/1.0\r\n\r\n", ["GET / HTTP/1.0 close | <end>"]),
            ("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", ["GET / HTTP/1.0 keep-alive | <end>"]),
            ("\r\n\r\nGET /late HTTP/1.1\r\nHost: a\r\n\r\n", ["GET /late HTTP/1.1 keep-alive | <end>"]),
            ("GET / HTTP/1.1\r\nConnection: keep-alive, close\r\n\r\n", ["GET / HTTP/1.1 close | <end>"]),
            ("PUT /f HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok", ["PUT /f HTTP/1.1 keep-alive length=2 expect | ok<end>"]),
            ("GET / HTTP/1.1\r\nX-Request-Id:  abc-123 \r\n\r\n", ["GET / HTTP/1.1 keep-alive id=abc-123 | <end>"]),
            ("OPTIONS http://h.example:8080/a?b=c HTTP/1.1\r\nHost: h.example\r\n\r\n", ["OPTIONS http://h.example:8080/a?b=c HTTP/1.1 keep-alive | <end>"]),
            ("POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyz\r\nGET /b HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
             ["POST /a HTTP/1.1 keep-alive length=3 | xyz<end>", "GET /b HTTP/1.1 keep-alive length=0 | <end>"]),
        ]

        @Test func wholeOrByteByByteGivesTheSameRequest() {
            for (request, read) in Self.good {
                for step in [1, 2, 7, request.utf8.count] {
                    do throws(RelayError) {
                        #expect(try Self.read(request, step: step) == read, "\(request.debugDescription) by \(step)")
                    } catch {
                        Issue.record("\(request.debugDescription) by \(step): \(error)")
                    }
                }
            }
        }

        static let refusals: [(request: String, code: RelayError.Code)] = {
            let post = "POST / HTTP/1.1\r\nHost: a\r\n"
            let chunked = post + "Transfer-Encoding: chunked\r\n\r\n"
            return [
                ("GET / HTTP/1.1\nHost: a\r\n\r\n", .badRequest), (post + "X-A: 1\nX-B: 2\r\n\r\n", .badRequest),
                (post + "Host : a\r\n\r\n", .badRequest), (post + "X-A: 1\r\n folded\r\n\r\n", .badRequest),
                (post + "X-A: a\u{0}b\r\n\r\n", .badRequest), (post + "X-A: a\u{7F}b\r\n\r\n", .badRequest),
                (post + "X-A: a\u{1B}b\r\n\r\n", .badRequest), ("G(T / HTTP/1.1\r\n\r\n", .badRequest),
                ("GET /a b HTTP/1.1\r\n\r\n", .badRequest), ("GET /a\u{1}b HTTP/1.1\r\n\r\n", .badRequest),
                ("GET / HTTP/1.2\r\n\r\n", .badRequest), ("GET / HTTP/2.0\r\n\r\n", .badRequest),
                ("GET / http/1.1\r\n\r\n", .badRequest), ("GET / HTTP/1.1 x\r\n\r\n", .badRequest),
                (post + "Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc", .badRequest),
                (post + "Content-Length: +5\r\n\r\nhello", .badRequest), (post + "Content-Length: 5, 6\r\n\r\nhello", .badRequest),
                (post + "Content-Length: -1\r\n\r\n", .badRequest), (post + "Content-Length: 5x\r\n\r\nhello", .badRequest),
                (post + "Content-Length: 1234567890123456789\r\n\r\n", .badRequest),
                (post + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", .badRequest),
                (post + "Transfer-Encoding: identity\r\n\r\n", .badRequest), (post + "Transfer-Encoding: chunked, identity\r\n\r\n", .badRequest),
                (post + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", .badRequest),
                (post + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", .notImplemented),
                ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", .badRequest),
                ("CONNECT h.example:443 HTTP/1.1\r\nHost: h.example:443\r\n\r\n", .notImplemented),
                ("GET / HTTP/1.1\r\nX-Big: \(String(repeating: "v", count: 1100))\r\n\r\n", .headersTooLarge),
                ("GET / HTTP/1.1\r\n" + (0..<21).map { "X-\($0): v\r\n" }.joined() + "\r\n", .headersTooLarge),
                (chunked + "zz\r\nab\r\n0\r\n\r\n", .badRequest), (chunked + "2\r\nabc\r\n0\r\n\r\n", .badRequest),
            ]
        }()

        @Test func malformedRequestsAreRefusedWithTheRightCode() {
            for (request, code) in Self.refusals {
                for step in [1, request.utf8.count] {
                    do throws(RelayError) {
                        let read = try Self.read(request, step: step)
                        Issue.record("\(request.debugDescription) by \(step) was read as \(read)")
                    } catch {
                        #expect(error.code == code, "\(request.debugDescription) by \(step): \(error)")
                    }
                }
            }
        }

        // MARK: Against llhttp

        /// The first request in an input as a parser saw it (a chunked body without its framing).
        struct Request: Equatable, CustomStringConvertible {
            var method, uri, version: String
            var keepAlive: Bool
            var body: [UInt8]
            var description: String { "\(method) \(uri) \(version) keep-alive \(keepAlive), body \(String(decoding: body, as: UTF8.self).debugDescription)" }
        }

        enum Outcome: Equatable {
            case accepted(Request)
            case refused(String)
            /// It waited for more bytes.
            case incomplete
        }

        static func byRequestReader(_ bytes: [UInt8]) -> Outcome {
            var reader = RequestReader(maxHeadBytes: 60_000, maxHeaderCount: 1000)
            var buffer = ByteBuffer(bytes: bytes)
            var head: RequestReader.Head?
            var body: [UInt8] = []
            do throws(RelayError) {
                while let event = try reader.next(&buffer) {
                    switch event {
                    case .head(let parsed): head = parsed
                    case .body(let slice): body += slice.readableBytesView
                    case .end:
                        let head = head!
                        return .accepted(Request(method: head.methodName, uri: head.target, version: head.isHTTP10 ? "HTTP/1.0" : "HTTP/1.1",
                                                 keepAlive: head.keepAlive, body: head.isChunked ? dechunked(body) : body))
                    }
                }
            } catch {
                return .refused("\(error.code): \(error.detail.replacing("malformed request: ", with: ""))")
            }
            return .incomplete
        }

        /// A chunked body RequestReader accepted, without its framing.
        static func dechunked(_ raw: [UInt8]) -> [UInt8] {
            var data: [UInt8] = []
            var index = 0
            while true {
                var size = 0
                while let digit = Int(String(UnicodeScalar(raw[index])), radix: 16) { size = size * 16 + digit; index += 1 }
                index = raw[index...].firstIndex(of: 10)! + 1
                if size == 0 { return data }
                data += raw[index..<(index + size)]
                index += size + 2
            }
        }

        /// Collects what `HTTPRequestDecoder` makes of the first request.
        final class LLHTTP: ChannelInboundHandler, @unchecked Sendable {
            typealias InboundIn = HTTPServerRequestPart
            var outcome = Outcome.incomplete
            var head: HTTPRequestHead?
            var body: [UInt8] = []

            func channelRead(context: ChannelHandlerContext, data: NIOAny) {
                guard outcome == .incomplete else { return }
                switch unwrapInboundIn(data) {
                case .head(let parsed): head = parsed
                case .body(let slice): body += slice.readableBytesView
                case .end:
                    let head = head!  // NIO spells M-SEARCH without its hyphen.
                    outcome = .accepted(Request(method: head.method == .MSEARCH ? "M-SEARCH" : head.method.rawValue, uri: head.uri,
                                                version: "\(head.version)", keepAlive: head.isKeepAlive, body: body))
                }
            }

            func errorCaught(context: ChannelHandlerContext, error: any Error) {
                if outcome == .incomplete { outcome = .refused("\(error)") }
                context.close(promise: nil)
            }

            /// Runs `bytes` through a decoder on a pipe, then the end of input.
            static func outcome(_ bytes: [UInt8]) async throws -> Outcome {
                var fds: [Int32] = [0, 0]
                try #require(pipe(&fds) == 0)
                let written = bytes.withUnsafeBytes { write(fds[1], $0.baseAddress, $0.count) }
                close(fds[1])
                try #require(written == bytes.count)
                let collector = LLHTTP()
                let channel = try await NIOPipeBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                    .channelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandlers(
                                ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)), collector)
                        }
                    }
                    .takingOwnershipOfDescriptor(input: fds[0]).get()
                try await channel.closeFuture.get()
                return try await channel.eventLoop.submit { collector.outcome }.get()
            }
        }

        enum Verdict {
            case same, bothRefuse
            /// A difference that can't move where the request ends: RequestReader refuses (or waits,
            /// or closes) where llhttp goes on, or llhttp refuses only the method or target.
            case allowed(String)
            case wrong(String, detail: String)
        }

        static func verdict(_ input: [UInt8]) async throws -> Verdict {
            let ours = byRequestReader(input)
            let theirs = try await LLHTTP.outcome(input)
            switch (ours, theirs) {
            case (.accepted(let a), .accepted(var b)):
                if a == b { return .same }
                b.keepAlive = a.keepAlive
                if a == b { return .allowed("keep-alive: RequestReader \(a.keepAlive), llhttp \(!a.keepAlive)") }
                return .wrong("both accept, read differently", detail: "RequestReader: \(a)\nllhttp: \(theirs)")
            case (.accepted(let a), .refused(let error)) where error == "\(HTTPParserError.invalidMethod)" || error == "\(HTTPParserError.invalidURL)":
                // With "PUT /" in their place, both must read the rest alike.
                var start = 0
                while input[start...].starts(with: [13, 10]) { start += 2 }
                let targetEnd = input[(input[start...].firstIndex(of: 32)! + 1)...].firstIndex(of: 32)!
                let plain = try await verdict(Array("PUT /".utf8) + input[targetEnd...])
                guard case .same = plain else { return plain }
                return .allowed("only RequestReader accepts " + (error == "\(HTTPParserError.invalidMethod)" ? "a method llhttp doesn't know"
                    : a.uri.utf8.contains { $0 >= 0x80 } ? "raw UTF-8 in the target" : "a target llhttp's URL grammar refuses"))
            case (.accepted, .refused) where String(decoding: input, as: UTF8.self).contains("chunked\t\r\n"):
                // Trailing whitespace is OWS (RFC 9110 §5.5); the member gets the relay's own clean line anyway.
                let plain = try await verdict(Array(String(decoding: input, as: UTF8.self).replacingOccurrences(of: "chunked\t\r\n", with: "chunked\r\n").utf8))
                guard case .same = plain else { return plain }
                return .allowed("only RequestReader accepts OWS after chunked")
            case (.accepted(let a), _): return .wrong("RequestReader accepts, llhttp \(theirs)", detail: "RequestReader: \(a)")
            case (.refused(let reason), .accepted): return .allowed("only llhttp accepts; RequestReader: \(reason)")
            case (.incomplete, .accepted): return .allowed("only llhttp accepts; RequestReader waits for more bytes")
            default: return .bothRefuse
            }
        }

        /// A random well-formed request: method, target, version, framing, headers and body vary.
        static func randomRequest(_ random: inout SplitMix64) -> String {
            let method = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "PROPFIND", "M-SEARCH"].randomElement(using: &random)!
            let target = ["/", "/a?b=c", "*", "http://h:1/p?q", "/caf\u{E9}", "/%7E~!$&'()*+,;=:@", "/x?y=/z#f"].randomElement(using: &random)!
            let http10 = Int.random(in: 0..<4, using: &random) == 0
            let pool = ["Connection: close", "Connection: keep-alive", "Connection: x-private", "Expect: 100-continue", "X-Request-Id: r1",
                        "Accept:  */*  ", "X-Empty:", "X-Tab:\tv\t", "X-Utf8: caf\u{E9}", "Keep-Alive: timeout=5", "cOnTeNt-TyPe: text/plain"]
            var headers = ["Host: a"] + pool.filter { _ in Int.random(in: 0..<4, using: &random) == 0 }
            var body = ""
            switch Int.random(in: 0..<3, using: &random) {
            case 0 where !http10:
                headers.append(["Transfer-Encoding: chunked", "transfer-encoding: CHUNKED", "Transfer-Encoding:chunked"].randomElement(using: &random)!)
                for _ in 0..<Int.random(in: 0...3, using: &random) {
                    let size = Int.random(in: 1...20, using: &random)
                    let ext = ["", ";a=1", ";a=\"q s\"", ";b"].randomElement(using: &random)!
                    body += String(size, radix: 16, uppercase: Bool.random(using: &random)) + ext + "\r\n" + String(repeating: "d", count: size) + "\r\n"
                }
                body += "0\r\n" + (0..<Int.random(in: 0...2, using: &random)).map { "T\($0): v\r\n" }.joined() + "\r\n"
            case 1:
                let length = Int.random(in: 0...30, using: &random)
                headers.append("Content-Length: \(length == 7 ? "007" : String(length))")
                body = String(repeating: "b", count: length)
            default:
                break
            }
            headers.shuffle(using: &random)
            return "\(method) \(target) HTTP/1.\(http10 ? 0 : 1)\r\n" + headers.map { $0 + "\r\n" }.joined() + "\r\n" + body
        }

        /// One byte replaced (by a byte that matters to the grammar, or any), deleted or inserted.
        static func mutatedOnce(_ text: String, _ random: inout SplitMix64) -> [UInt8] {
            var bytes = Array(text.utf8)
            let at = Int.random(in: 0..<bytes.count, using: &random)
            let byte = Bool.random(using: &random) ? Array("\r\n \t\0:;,\u{7F}0aA-\"".utf8).randomElement(using: &random)! : UInt8.random(in: 0...255, using: &random)
            switch Int.random(in: 0..<3, using: &random) {
            case 0: bytes[at] = byte
            case 1: bytes.remove(at: at)
            default: bytes.insert(byte, at: at)
            }
            return bytes
        }

        /// Hand-picked inputs at the edges of the two grammars: transfer codings, chunk lines, trailers, lengths, keep-alive.
        static let probes: [String] = {
            let post = "POST / HTTP/1.1\r\nHost: a\r\n"
            let chunked = post + "Transfer-Encoding: chunked\r\n\r\n"
            return ["chunked,", ", chunked", "chunked , ", "chunked;q=1", "chunked\t", " chunked", "Chunked"].map {
                post + "Transfer-Encoding: \($0)\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
            } + ["5 ", "5\t", "5 x", "5;", "5;a=", "5;=b", "5; a=b", "5 ;a", "5;a=\u{1}", "5;a=\"x", "05", "0000000000005"].map {
                chunked + "\($0)\r\nhello\r\n0\r\n\r\n"
            } + ["no colon", "\u{0}x: 1", " x: 1", "x : 1", "x: \u{1}", ": v"].map { chunked + "1\r\nz\r\n0\r\n\($0)\r\n\r\n" }
                + ["Content-Length: 5 ", "Content-Length:\t5", "Content-Length: 000000000000000005", "Connection: keep-alive, keep-alive",
                   "Connection: keep-alive\r\nConnection: keep-alive", "Connection: close, keep-alive"].map { post + "\($0)\r\n\r\nhello" }
                + ["GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", "\nGET / HTTP/1.1\r\n\r\n", "GET / HTTP/1.1\r\n\r\n\r\n",
                   "GET /\u{E9}t\u{E9} HTTP/1.1\r\n\r\n", "GET http://a:b@c/ HTTP/1.1\r\n\r\n", "GET /#frag HTTP/1.1\r\n\r\n", "GET a HTTP/1.1\r\n\r\n"]
        }()

        @Test func neverAcceptsWhatLLHTTPRefusesNorReadsItDifferently() async throws {
            var random = SplitMix64(seed: 0x5EED_0004)
            var inputs = (Self.good.map(\.request) + FuzzGenerator.validRequests + Self.probes).map { Array($0.utf8) }
            inputs += FuzzGenerator.smugglingAttempts().map { Array($0.parts.joined()) }
            for round in 0..<3_600 {
                let input: [UInt8] = switch round % 6 {
                case 0: Array(Self.randomRequest(&random).utf8)
                case 1: Array(FuzzGenerator.malformedLine(round / 6, &random).parts.joined())
                case 2: Array(FuzzGenerator.badHeaders(&random).parts.joined())
                case 3: Array(FuzzGenerator.mutated(&random).parts.joined())
                case 4: Self.mutatedOnce(Self.good.randomElement(using: &random)!.request, &random)
                default: Self.mutatedOnce(Self.randomRequest(&random), &random)
                }
                inputs.append(input)
            }

            var same = 0, bothRefuse = 0
            var allowed: [String: (count: Int, example: String)] = [:]
            var wrong: [String: (count: Int, example: String)] = [:]
            for input in inputs {
                let shown = String(decoding: input.prefix(300), as: UTF8.self).debugDescription
                switch try await Self.verdict(input) {
                case .same: same += 1
                case .bothRefuse: bothRefuse += 1
                case .allowed(let why): allowed[why, default: (0, shown)].count += 1
                case .wrong(let why, let detail):
                    print("RequestReading vs llhttp: \(why): \(shown)")
                    wrong[why, default: (0, "\(detail)\ninput: \(shown)")].count += 1
                }
            }
            print("RequestReading vs llhttp: \(inputs.count) inputs, \(same) read alike, \(bothRefuse) refused by both, "
                + "\(allowed.values.map(\.count).reduce(0, +)) allowed differences, \(wrong.values.map(\.count).reduce(0, +)) wrong")
            for (why, (count, example)) in allowed.sorted(by: { $0.value.count > $1.value.count }) {
                print("  ×\(count) \(why), e.g. \(example)")
            }
            for (why, (count, example)) in wrong.sorted(by: { $0.value.count > $1.value.count }) {
                Issue.record("×\(count) \(why), e.g.\n\(example)")
            }
            #expect(inputs.count >= 3_000)
            #expect(same >= 500 && bothRefuse >= 500)
        }
    }
}
