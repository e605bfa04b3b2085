#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import ShoalCore
import ShoalProxy
import ShoalTesting
import Synchronization
import Testing

/// Bad input, tried at scale, against the service manager's relay in this process (a real
/// `shoal-webserver` behind it): thousands of malformed, oversize, random, mutated, smuggling,
/// slow and truncated requests over raw sockets. Each gets a refusal or a clean close — never a
/// crash, a hang or an answer to a request smuggled behind another — and the relay keeps
/// serving with bounded memory. Seeds are fixed, so a failure repeats; each test prints its count.
extension ProxyTests {
    @Suite struct HTTPFuzz {
        /// What the relay may answer a request it must refuse with.
        static let refusals: Set<Int> = [400, 408, 413, 431, 501, 505]

        static func relay(_ web: WebServer) async throws -> HTTPRelayServer {
            let relay = HTTPRelayServer.serviceManager(
                local: web.address,
                configuration: testConfiguration {
                    $0.maxHeaderBytes = 8 * 1024
                    $0.maxRequestBodyBytes = 64 * 1024
                    $0.requestHeadTimeout = .milliseconds(300)
                    $0.requestBodyIdleTimeout = .milliseconds(300)
                    $0.clientIdleTimeout = .milliseconds(500)
                    $0.closeLingerTimeout = .milliseconds(500)
                },
                logger: Logger(label: "fuzz") { _ in SwiftLogNoOpLogHandler() })
            try await relay.start()
            return relay
        }

        /// A good request on a fresh connection gets exactly its document.
        static func servesCorrectly(_ port: Int, size: Int) async -> String? {
            let answer = await FuzzExchange.run(port: port, FuzzCase("check", "GET /doc?size=\(size) HTTP/1.1\r\nHost: a\r\n\r\n", .served(size)))
            return FuzzExchange.problem(with: answer, expected: .served(size))
        }

        @Test("2 000 malformed, oversize, random, mutated and pipelined requests get refusals or clean closes, in bounded memory")
        func malformedRequests() async throws {
            let web = try WebServer()
            defer { web.stop() }
            let relay = try await Self.relay(web)
            var random = SplitMix64(seed: 0xF022_0001)
            // Warm up (connections, pools, allocator) before the first memory reading.
            _ = await FuzzExchange.runAll(port: relay.port, (0..<200).map { FuzzGenerator.malformedLine($0, &random) })

            var cases: [FuzzCase] = []
            for round in 0..<2_400 {
                let input = switch round % 8 {
                case 0: FuzzGenerator.malformedLine(round, &random)
                case 1, 2: FuzzGenerator.badHeaders(&random)
                case 3: FuzzGenerator.oversize(&random)
                case 4: FuzzGenerator.randomBytes(&random)
                case 5, 6: FuzzGenerator.mutated(&random)
                default: FuzzGenerator.pipelinedGarbage(&random)
                }
                cases.append(input)
            }
            let before = try residentMegabytes()  // With the inputs made: only the relay's growth counts.
            let start = ContinuousClock.now
            let results = await FuzzExchange.runAll(port: relay.port, cases)
            let took = ContinuousClock.now - start
            let after = try residentMegabytes()

            let tally = FuzzTally(cases: cases, results: results)
            print("HTTPFuzz malformed: \(tally.summary), took \(took), VmRSS \(before) → \(after) MB")
            tally.recordFirstProblems()
            #expect(tally.problems.isEmpty)
            #expect(cases.count >= 2_000)
            #expect(tally.statuses.keys.contains(400) && tally.statuses.keys.contains(431) && tally.statuses.keys.contains(413))
            #expect(after - before < 64, "the relay's process grew from \(before) MB to \(after) MB")
            #expect(await Self.servesCorrectly(relay.port, size: 9) == nil)
            await relay.shutdown()
        }

        @Test("CL.TE, TE.CL and other smuggling attempts never get the smuggled request answered, now or later")
        func smugglingAttempts() async throws {
            let web = try WebServer()
            defer { web.stop() }
            let relay = try await Self.relay(web)
            var random = SplitMix64(seed: 0xF022_0002)
            var tried = 0
            var problems: [String] = []
            for round in 0..<5 {
                for (index, attempt) in FuzzGenerator.smugglingAttempts().enumerated() {
                    tried += 1
                    let answer = await FuzzExchange.run(port: relay.port, attempt)
                    if let problem = FuzzExchange.problem(with: answer, expected: attempt.expect) {
                        problems.append("smuggling #\(index) (round \(round)): \(problem)\n\(attempt.shown)")
                    }
                    // A smuggled request left on a pooled connection would answer the next client.
                    for _ in 0..<2 {
                        let size = Int.random(in: 1...300, using: &random)
                        if let problem = await Self.servesCorrectly(relay.port, size: size) {
                            problems.append("after smuggling #\(index) (round \(round)), GET size=\(size): \(problem)")
                        }
                    }
                }
            }
            print("HTTPFuzz smuggling: \(tried) attempts, \(2 * tried) follow-up requests, \(problems.count) problems")
            for problem in problems.prefix(5) { Issue.record(Comment(rawValue: problem)) }
            #expect(problems.isEmpty)
            #expect(tried >= 100)
            await relay.shutdown()
        }

        @Test("slow senders, stalled heads and truncated bodies get 408 or a clean close within the timeouts")
        func slowSenders() async throws {
            let web = try WebServer()
            defer { web.stop() }
            let relay = try await Self.relay(web)
            var random = SplitMix64(seed: 0xF022_0003)
            let cases = (0..<120).map { FuzzGenerator.slow($0, &random) }
            let start = ContinuousClock.now
            let results = await FuzzExchange.runAll(port: relay.port, cases, threads: 40)
            let took = ContinuousClock.now - start
            let tally = FuzzTally(cases: cases, results: results)
            print("HTTPFuzz slow: \(tally.summary), took \(took)")
            tally.recordFirstProblems()
            #expect(tally.problems.isEmpty)
            #expect(tally.statuses[408, default: 0] >= 60, "most stalled requests are answered 408")
            #expect(results.map(\.seconds).max() ?? 99 < 3, "every stalled request ends well within 3 s")
            #expect(relay.members.local?.inFlight == 0)
            #expect(await Self.servesCorrectly(relay.port, size: 11) == nil)
            await relay.shutdown()
        }
    }
}

/// One input: bytes sent in parts (with a pause between), and the class of answer it must get.
struct FuzzCase: Sendable {
    enum Expect: Sendable, Equatable {
        /// Only refusals (``ProxyTests/HTTPFuzz/refusals``), or a close with no answer.
        case refused
        /// A `200` with a body of this many bytes, then at most refusals.
        case served(Int)
        /// Any well-formed answers (a mutation may leave a request valid), then a close.
        case anything
    }

    var kind: String
    var parts: [[UInt8]]
    var pause: Duration = .zero
    /// Whether to shut down the sending side after the last part (else the relay must time out).
    var halfClose = true
    var expect: Expect

    init(_ kind: String, _ text: String, _ expect: Expect) {
        self.init(kind, [Array(text.utf8)], expect)
    }

    init(_ kind: String, _ parts: [[UInt8]], _ expect: Expect, pause: Duration = .zero, halfClose: Bool = true) {
        self.kind = kind
        self.parts = parts
        self.expect = expect
        self.pause = pause
        self.halfClose = halfClose
    }

    var shown: String { String(String(decoding: parts.joined(), as: UTF8.self).prefix(300)).debugDescription }
}

/// What came back on one connection, and how it ended.
struct FuzzAnswer: Sendable {
    enum End: Sendable { case closed, reset, timedOut, connectFailed }
    var bytes: [UInt8]
    var end: End
    var seconds: Double
}

/// Counts answers by status and collects the wrong ones.
struct FuzzTally {
    var statuses: [Int: Int] = [:]
    var closedWithoutAnswer = 0
    var problems: [String] = []
    let tried: Int

    init(cases: [FuzzCase], results: [FuzzAnswer]) {
        tried = cases.count
        for (input, answer) in zip(cases, results) {
            let responses = FuzzExchange.responses(in: answer.bytes).responses
            if responses.isEmpty { closedWithoutAnswer += 1 }
            for response in responses { statuses[response.status, default: 0] += 1 }
            if let problem = FuzzExchange.problem(with: answer, expected: input.expect) {
                problems.append("\(input.kind): \(problem)\n\(input.shown)")
            }
        }
    }

    var summary: String {
        let counts = statuses.sorted { $0.key < $1.key }.map { "\($0.key)×\($0.value)" }.joined(separator: " ")
        return "\(tried) inputs, answers \(counts), \(closedWithoutAnswer) closed without an answer, \(problems.count) problems"
    }

    func recordFirstProblems() {
        for problem in problems.prefix(5) { Issue.record(Comment(rawValue: problem)) }
    }
}

/// Raw exchanges over blocking sockets on plain threads (so waiting never holds up the
/// concurrency pool), and the checks on what came back.
enum FuzzExchange {
    struct Response: Equatable {
        var status: Int
        var bodyLength: Int
    }

    /// Runs every case, `threads` at a time; answers in the order of `cases`.
    static func runAll(port: Int, _ cases: [FuzzCase], threads: Int = 8) async -> [FuzzAnswer] {
        final class Progress: Sendable {
            let results: Mutex<[FuzzAnswer?]>
            let next = Atomic<Int>(0)
            init(count: Int) { results = Mutex(Array(repeating: nil, count: count)) }
        }
        let progress = Progress(count: cases.count)
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<threads {
                group.addTask {
                    await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                        Thread.detachNewThread {
                            while true {
                                let index = progress.next.add(1, ordering: .relaxed).oldValue
                                guard index < cases.count else { break }
                                let answer = exchange(port: port, cases[index])
                                progress.results.withLock { $0[index] = answer }
                            }
                            done.resume()
                        }
                    }
                }
            }
        }
        return progress.results.withLock { $0.map { $0! } }
    }

    static func run(port: Int, _ input: FuzzCase) async -> FuzzAnswer {
        await runAll(port: port, [input], threads: 1)[0]
    }

    /// Connects, sends the parts, half-closes if asked, and reads until the relay closes (or 5 s).
    static func exchange(port: Int, _ input: FuzzCase) -> FuzzAnswer {
        let start = ContinuousClock.now
        guard let fd = try? LoopbackSocket.connect(port: port, receiveTimeout: .milliseconds(100)) else {
            return FuzzAnswer(bytes: [], end: .connectFailed, seconds: 0)
        }
        defer { close(fd) }
        sending: for (index, part) in input.parts.enumerated() {
            if index > 0, input.pause > .zero { Thread.sleep(forTimeInterval: seconds(input.pause)) }
            var sent = 0
            while sent < part.count {
                let count = part[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                guard count > 0 else { break sending }  // The relay may answer and close before taking it all.
                sent += count
            }
        }
        if input.halfClose { shutdown(fd, Int32(SHUT_WR)) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count > 0 {
                bytes += buffer[..<count]
            } else if count == 0 {
                return FuzzAnswer(bytes: bytes, end: .closed, seconds: seconds(ContinuousClock.now - start))
            } else if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR {
                if ContinuousClock.now - start > .seconds(5) {
                    return FuzzAnswer(bytes: bytes, end: .timedOut, seconds: 5)
                }
            } else {
                return FuzzAnswer(bytes: bytes, end: .reset, seconds: seconds(ContinuousClock.now - start))
            }
        }
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    /// What is wrong with `answer` for an input that expects `expected`, or nil.
    static func problem(with answer: FuzzAnswer, expected: FuzzCase.Expect) -> String? {
        let shown = String(decoding: answer.bytes.prefix(300), as: UTF8.self).debugDescription
        switch answer.end {
        case .connectFailed: return "could not connect"
        case .timedOut: return "the relay neither answered nor closed within 5 s; got \(shown)"
        case .reset where answer.bytes.isEmpty: return "the connection was reset without an answer"
        case .closed, .reset: break
        }
        let (responses, complete) = responses(in: answer.bytes)
        if !complete { return "the answer is not well-formed HTTP: \(shown)" }
        if responses.contains(where: { $0.status / 100 == 2 && $0.bodyLength == FuzzGenerator.smuggledSize }) {
            return "the smuggled request was answered: \(shown)"
        }
        switch expected {
        case .anything:
            return nil
        case .refused:
            if responses.count > 1 { return "\(responses.count) answers to one refused request: \(shown)" }
            if let status = responses.first?.status, !ProxyTests.HTTPFuzz.refusals.contains(status) {
                return "answered \(status), not a refusal: \(shown)"
            }
            return nil
        case .served(let size):
            guard let first = responses.first else { return "no answer to the good request" }
            if first != Response(status: 200, bodyLength: size) { return "the good request got \(first), expected 200 with \(size) bytes: \(shown)" }
            if responses.count > 2 { return "\(responses.count) answers, expected the good one and at most a refusal: \(shown)" }
            if responses.count == 2, !ProxyTests.HTTPFuzz.refusals.contains(responses[1].status) {
                return "the garbage after the good request got \(responses[1].status): \(shown)"
            }
            return nil
        }
    }

    /// The responses in `bytes`, and whether they parse to the end (framed by Content-Length,
    /// chunked, or the close).
    static func responses(in bytes: [UInt8]) -> (responses: [Response], complete: Bool) {
        var responses: [Response] = []
        var index = 0
        let separator = Array("\r\n\r\n".utf8)
        while index < bytes.count {
            guard let headEnd = find(separator, in: bytes, from: index) else { return (responses, false) }
            let lines = String(decoding: bytes[index..<headEnd], as: UTF8.self).components(separatedBy: "\r\n")
            let words = lines[0].split(separator: " ", maxSplits: 2)
            guard words.count >= 2, words[0].hasPrefix("HTTP/1."), let status = Int(words[1]) else { return (responses, false) }
            var fields: [String: String] = [:]
            for line in lines.dropFirst() {
                guard let colon = line.firstIndex(of: ":") else { return (responses, false) }
                fields[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
            index = headEnd + separator.count
            if status / 100 == 1 || status == 204 || status == 304 {
                if status / 100 != 1 { responses.append(Response(status: status, bodyLength: 0)) }
                continue
            }
            if fields["transfer-encoding"]?.lowercased() == "chunked" {
                var length = 0
                while true {
                    guard let lineEnd = find(Array("\r\n".utf8), in: bytes, from: index),
                          let size = Int(String(decoding: bytes[index..<lineEnd], as: UTF8.self).split(separator: ";").first ?? "", radix: 16)
                    else { return (responses, false) }
                    index = lineEnd + 2 + size + 2
                    guard index <= bytes.count else { return (responses, false) }
                    length += size
                    if size == 0 { break }
                }
                responses.append(Response(status: status, bodyLength: length))
            } else if let text = fields["content-length"] {
                guard let length = Int(text), index + length <= bytes.count else { return (responses, false) }
                responses.append(Response(status: status, bodyLength: length))
                index += length
            } else {
                responses.append(Response(status: status, bodyLength: bytes.count - index))
                index = bytes.count
            }
        }
        return (responses, true)
    }

    private static func find(_ pattern: [UInt8], in bytes: [UInt8], from start: Int) -> Int? {
        guard bytes.count >= pattern.count else { return nil }
        var index = start
        while index <= bytes.count - pattern.count {
            if bytes[index] == pattern[0], bytes[index..<(index + pattern.count)].elementsEqual(pattern) { return index }
            index += 1
        }
        return nil
    }
}

/// The inputs, each from a seeded ``SplitMix64``.
enum FuzzGenerator {
    /// The document size the smuggled request asks for: an answer of this size is a smuggled one.
    static let smuggledSize = 4242
    static let smuggled = "GET /doc?size=\(smuggledSize) HTTP/1.1\r\nHost: a\r\n\r\n"

    static let goodMethods = ["GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]
    static let badMethods = ["", "G\u{0}ET", "GET\u{7F}", "(GET)", "GET:", "\u{1}", "G\"ET", "GET{}", "é", "[GET]", "GE\tT", "GET/"]
    static let goodURIs = ["/doc?size=5", "/health", "/", "/doc?size=0", "/a/b/c?x=1&y=2", "*", "http://a/doc?size=3"]
    static let badURIs = ["", "/a b", "/\u{0}", "/\u{7F}", "/\u{1B}x", "/\rx", "/a\u{8}b", "/x\u{0}y?size=3"]
    static let goodVersions = ["HTTP/1.1", "HTTP/1.0"]
    static let badVersions = ["HTTP/", "HTTP/1", "HTTP/1.1.1", "HTTPS/1.1", "http/1.1", "HTTP/x.y", "HTTP/11.1", "HTTP/1.1 x", "HTTP/1.1\u{0}", "FTP/1.0", "HTTP/1.a"]

    /// A request line with exactly one broken part.
    static func malformedLine(_ round: Int, _ random: inout SplitMix64) -> FuzzCase {
        var method = goodMethods.randomElement(using: &random)!
        var uri = goodURIs.randomElement(using: &random)!
        var version = goodVersions.randomElement(using: &random)!
        switch round % 3 {
        case 0: method = badMethods.randomElement(using: &random)!
        case 1: uri = badURIs.randomElement(using: &random)!
        default: version = badVersions.randomElement(using: &random)!
        }
        return FuzzCase("request line", "\(method) \(uri) \(version)\r\nHost: a\r\n\r\n", .refused)
    }

    /// A good request line with broken, duplicate or conflicting headers.
    static func badHeaders(_ random: inout SplitMix64) -> FuzzCase {
        let broken = [
            "Bad Header: x", "Host : a", "X-A: a\u{0}b", "X-A: a\rb", "X-\u{0}: v", ": empty-name", "NoColon", "X-\u{7F}: v",
            "Content-Length: 5\r\nContent-Length: 6", "Content-Length: 5, 6", "Content-Length: 5x", "Content-Length: -1",
            "Content-Length: +5", "Content-Length: 0x10", "Content-Length: 99999999999999999999999", "Content-Length: 1 2",
            "Content-Length: 3\r\nTransfer-Encoding: chunked", "Transfer-Encoding: identity", "Transfer-Encoding: gzip",
            "Transfer-Encoding: chunked, identity", "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
            "Transfer-Encoding: xchunked", "Transfer-Encoding : chunked", "X-Ä: v", "(X): v", "X-A: v\r\n\tfolded\r\n Content-Length: 4",
        ]
        let header = broken.randomElement(using: &random)!
        let method = ["GET", "POST"].randomElement(using: &random)!
        var extra = ""
        for _ in 0..<Int.random(in: 0...3, using: &random) { extra += "X-F\(Int.random(in: 0...99, using: &random)): v\r\n" }
        return FuzzCase("headers", "\(method) /doc?size=5 HTTP/1.1\r\nHost: a\r\n\(extra)\(header)\r\n\r\nhello", .refused)
    }

    /// Over a limit: header bytes, header count, a declared or a streamed body, the request line.
    static func oversize(_ random: inout SplitMix64) -> FuzzCase {
        switch Int.random(in: 0..<5, using: &random) {
        case 0:
            let value = String(repeating: "v", count: Int.random(in: 9_000...40_000, using: &random))
            return FuzzCase("big header", "GET /doc HTTP/1.1\r\nHost: a\r\nX-Big: \(value)\r\n\r\n", .refused)
        case 1:
            let headers = (0..<Int.random(in: 101...400, using: &random)).map { "X-\($0): v\r\n" }.joined()
            return FuzzCase("many headers", "GET /doc HTTP/1.1\r\nHost: a\r\n\(headers)\r\n", .refused)
        case 2:
            let length = Int.random(in: 65_537...100_000_000, using: &random)
            return FuzzCase("declared body", "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: \(length)\r\n\r\n" + String(repeating: "b", count: 1000), .refused)
        case 3:
            let chunk = "4000\r\n" + String(repeating: "c", count: 0x4000) + "\r\n"
            let chunks = String(repeating: chunk, count: Int.random(in: 5...12, using: &random))
            return FuzzCase("streamed body", "GET /doc?size=3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks + "0\r\n\r\n", .refused)
        default:
            let path = "/" + String(repeating: "p", count: Int.random(in: 9_000...30_000, using: &random))
            return FuzzCase("long request line", "GET \(path) HTTP/1.1\r\nHost: a\r\n\r\n", .refused)
        }
    }

    /// Random bytes; the first is never a letter, so they cannot start a valid request.
    static func randomBytes(_ random: inout SplitMix64) -> FuzzCase {
        var bytes = (0..<Int.random(in: 1...600, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
        bytes[0] = [0x00, 0x01, 0x7F, 0xFF, 0x20, 0x3A, 0x28].randomElement(using: &random)!
        return FuzzCase("random bytes", [bytes], .refused)
    }

    static let validRequests = [
        "GET /doc?size=5 HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello",
        "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        "GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        "GET /doc?size=5 HTTP/1.1\r\nHost: a\r\n\r\nGET /doc?size=6 HTTP/1.1\r\nHost: a\r\n\r\n",
    ]
    static let insertions = ["\r", "\n", "\r\n", "\u{0}", ":", " ", "\t", "\r\n ", "\r\n\r\n", ",", "\u{FF}", "Transfer-Encoding: chunked\r\n", "Content-Length: 3\r\n"]

    /// A valid request with one to three byte flips, deletions, duplications or insertions:
    /// it may stay valid, so any well-formed answer will do.
    static func mutated(_ random: inout SplitMix64) -> FuzzCase {
        var bytes = Array(validRequests.randomElement(using: &random)!.utf8)
        for _ in 0..<Int.random(in: 1...3, using: &random) {
            let at = Int.random(in: 0..<bytes.count, using: &random)
            let length = min(Int.random(in: 1...8, using: &random), bytes.count - at)
            switch Int.random(in: 0..<4, using: &random) {
            case 0: bytes[at] ^= UInt8(1) << UInt8.random(in: 0...7, using: &random)
            case 1 where bytes.count > length: bytes.removeSubrange(at..<(at + length))
            case 2: bytes.insert(contentsOf: Array(bytes[at..<(at + length)]), at: at)
            default: bytes.insert(contentsOf: Array(insertions.randomElement(using: &random)!.utf8), at: at)
            }
        }
        return FuzzCase("mutation", [bytes], .anything)
    }

    /// A good request, then garbage on the same connection: the first is answered, the rest refused.
    static func pipelinedGarbage(_ random: inout SplitMix64) -> FuzzCase {
        let size = Int.random(in: 1...200, using: &random)
        let garbage: [UInt8] = switch Int.random(in: 0..<3, using: &random) {
        case 0: Array(malformedLine(Int.random(in: 0...2, using: &random), &random).parts.joined())
        case 1: Array(badHeaders(&random).parts.joined())
        default: randomBytes(&random).parts[0]
        }
        return FuzzCase("pipelined garbage", [Array("GET /doc?size=\(size) HTTP/1.1\r\nHost: a\r\n\r\n".utf8) + garbage], .served(size))
    }

    /// Request-smuggling classics: each hides ``smuggled`` behind framing a parser could read
    /// two ways. Every one but the last must be refused; the last is a GET whose body is the
    /// smuggled request, answered once.
    static func smugglingAttempts() -> [FuzzCase] {
        let length = smuggled.utf8.count
        let hex = String(length, radix: 16)
        let teVariants = [
            "Transfer-Encoding: chunked", "Transfer-Encoding: xchunked", "Transfer-Encoding : chunked", "Transfer-Encoding:\tchunked",
            "Transfer-Encoding:\r\n chunked", "Transfer-Encoding: chunked\r\nTransfer-Encoding: x", "Transfer-Encoding: CHUNKED",
            "Transfer-Encoding: chunked, identity", "Transfer-Encoding: identity, chunked", "Transfer-Encoding: \"chunked\"",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked", "Transfer-Encoding: chunked\u{0}",
        ]
        var attempts: [FuzzCase] = []
        for te in teVariants {
            // CL.TE: the length covers the smuggled request; chunked framing ends before it.
            attempts.append(FuzzCase("CL.TE \(te)", "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: \(5 + length)\r\n\(te)\r\n\r\n0\r\n\r\n\(smuggled)", .refused))
            // TE.CL: the length ends after the chunk size; chunked framing holds the smuggled request.
            attempts.append(FuzzCase("TE.CL \(te)", "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: \(hex.utf8.count + 2)\r\n\(te)\r\n\r\n\(hex)\r\n\(smuggled)\r\n0\r\n\r\n", .refused))
        }
        attempts += [
            FuzzCase("CL.CL", "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: \(length)\r\n\r\n\(smuggled)", .refused),
            FuzzCase("CL.CL reversed", "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: \(length)\r\nContent-Length: 0\r\n\r\n\(smuggled)", .refused),
            FuzzCase("CL list", "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 0, \(length)\r\n\r\n\(smuggled)", .refused),
            FuzzCase("CL plus", "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: +\(length)\r\n\r\n\(smuggled)", .refused),
            FuzzCase("CL NUL", "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 0\u{0}\(length)\r\n\r\n\(smuggled)", .refused),
            FuzzCase("chunk size overflow", "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff1\r\n\(smuggled)\r\n0\r\n\r\n", .refused),
            FuzzCase("bare LF CL.TE", "POST /echo HTTP/1.1\nHost: a\nContent-Length: \(5 + length)\nTransfer-Encoding: chunked\n\n0\r\n\r\n\(smuggled)", .refused),
            FuzzCase("GET with body", "GET /doc?size=3 HTTP/1.1\r\nHost: a\r\nContent-Length: \(length)\r\n\r\n\(smuggled)", .served(3)),
        ]
        return attempts
    }

    /// Stalls: a prefix of a request head, a head with part of its body (declared or chunked),
    /// or a head dribbled a byte at a time; none ever completes, and nothing is half-closed.
    static func slow(_ round: Int, _ random: inout SplitMix64) -> FuzzCase {
        let head = "GET /doc?size=10 HTTP/1.1\r\nHost: a\r\nX-Slow: \(round)\r\n"
        switch round % 4 {
        case 0:
            let cut = Int.random(in: 1..<head.utf8.count, using: &random)
            return FuzzCase("stalled head", [Array(head.utf8.prefix(cut))], .refused, halfClose: false)
        case 1:
            let sent = Int.random(in: 0...99, using: &random)
            return FuzzCase("stalled body", [Array((head + "Content-Length: 100\r\n\r\n" + String(repeating: "b", count: sent)).utf8)], .refused, halfClose: false)
        case 2:
            let chunk = "10\r\n" + String(repeating: "b", count: Int.random(in: 0...15, using: &random))
            return FuzzCase("stalled chunk", [Array((head + "Transfer-Encoding: chunked\r\n\r\n" + chunk).utf8)], .refused, halfClose: false)
        default:
            return FuzzCase("dribbled head", Array(head.utf8.prefix(12)).map { [$0] }, .refused, pause: .milliseconds(40), halfClose: false)
        }
    }
}

/// This process's resident memory (VmRSS in /proc/self/status), in megabytes.
func residentMegabytes() throws -> Int {
    let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
    guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
          let kilobytes = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) })
    else { throw TestFailure("no VmRSS in /proc/self/status") }
    return kilobytes / 1024
}
