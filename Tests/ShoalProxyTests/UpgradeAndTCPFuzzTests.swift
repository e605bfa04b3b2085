import Foundation
import NIOCore
import ShoalCore
import ShoalProxy
import ShoalTesting
import Testing

/// The fuzzers of `HTTPFuzzTests`, extended to upgrade requests (to a real WebSocket server) and
/// to TCP mode (to a real redis-server): every connection ends within 5 s, nothing stays
/// counted, and the relay still serves afterwards.
extension ProxyTests {
    @Suite struct UpgradeAndTCPFuzz {
        static let upgrades = [
            "GET /chat HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            "GET /chat HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket, foo\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
            "GET / HTTP/1.0\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 5\r\n\r\nhello",
            "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n",
        ]

        static func mutate(_ text: String, _ random: inout SplitMix64) -> [UInt8] {
            var bytes = Array(text.utf8)
            for _ in 0..<Int.random(in: 0...3, using: &random) {
                let at = Int.random(in: 0..<bytes.count, using: &random)
                let length = min(Int.random(in: 1...8, using: &random), bytes.count - at)
                switch Int.random(in: 0..<4, using: &random) {
                case 0: bytes[at] ^= UInt8(1) << UInt8.random(in: 0...7, using: &random)
                case 1 where bytes.count > length: bytes.removeSubrange(at..<(at + length))
                case 2: bytes.insert(contentsOf: Array(bytes[at..<(at + length)]), at: at)
                default: bytes.insert(contentsOf: Array(FuzzGenerator.insertions.randomElement(using: &random)!.utf8), at: at)
                }
            }
            // Sometimes bytes after the head, as a client that does not wait for the 101 sends.
            if Bool.random(using: &random) {
                bytes += (0..<Int.random(in: 1...300, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            }
            return bytes
        }

        /// A `101` starts a tunnel (whatever follows is the member's); anything else must be well-formed HTTP.
        static func problem(_ answer: FuzzAnswer) -> String? {
            if answer.end == .timedOut { return "neither answered nor closed within 5 s" }
            if answer.bytes.starts(with: Array("HTTP/1.1 101 ".utf8)) { return nil }
            return FuzzExchange.problem(with: answer, expected: .anything)
        }

        @Test("1 200 upgrade requests, valid and mutated, with and without early bytes, to a real WebSocket server")
        func upgradeRequests() async throws {
            let echo = try await WebSocketEchoServer()
            let relay = HTTPRelayServer.serviceManager(local: echo.address, configuration: testConfiguration(), logger: LogCapture().logger)
            try await relay.start()
            var random = SplitMix64(seed: 0xF022_0016)
            let cases = (0..<1_200).map { round in
                FuzzCase("upgrade", [Self.mutate(Self.upgrades[round % Self.upgrades.count], &random)], .anything)
            }
            let results = await FuzzExchange.runAll(port: relay.port, cases)
            let tunnels = results.filter { $0.bytes.starts(with: Array("HTTP/1.1 101 ".utf8)) }.count
            let problems = zip(cases, results).compactMap { input, answer in Self.problem(answer).map { "\($0)\n\(input.shown)" } }
            print("UpgradeFuzz: \(cases.count) inputs, \(tunnels) tunnels opened, \(problems.count) problems")
            for problem in problems.prefix(3) { Issue.record("\(problem)") }
            #expect(tunnels > 60)
            #expect(try await Pooling.eventually(within: 5) { relay.admission.inFlight == 0 && relay.members.local?.inFlight == 0 })
            print("UpgradeFuzz: the relay's own answers: \(relay.statistics.localResponsesByCode)")
            let connection = try await WebSocketClient.connect(port: relay.port)
            #expect(try await ProxyTests.Upgrade.exchange(["still serving"], over: connection).first == "still serving")
            await relay.shutdown()
            echo.stop()
        }

        @Test("600 connections of random, mutated and cut-short bytes through a TCP-mode front-end and worker to redis-server")
        func tcpMode() async throws {
            let redis = try await TCPMode.redis()
            let worker = HTTPRelayServer.worker(
                upstream: try SocketAddress(ipAddress: redis.host, port: redis.port), limits: .init(maxConcurrent: 64, maxQueued: 64),
                configuration: TCPMode.tcp(), logger: LogCapture().logger)
            let workerAddress = try await worker.start()
            let frontend = HTTPRelayServer.serviceManager(local: nil, configuration: TCPMode.tcp(), logger: LogCapture().logger)
            try await frontend.start()
            let backend = try frontend.members.addBackend(name: "lease-1", address: workerAddress)

            var random = SplitMix64(seed: 0xF022_0017)
            let commands = ["PING\r\n", "SET k v\r\n", "GET k\r\n", "*1\r\n$4\r\nPING\r\n", "*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$1\r\ny\r\n"]
            let cases = (0..<600).map { round -> FuzzCase in
                var bytes: [UInt8]
                switch round % 3 {
                case 0: bytes = (0..<Int.random(in: 1...2000, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
                case 1: bytes = Self.mutate(commands.randomElement(using: &random)!, &random)
                default: bytes = Array(commands.randomElement(using: &random)!.utf8.dropLast(Int.random(in: 1...3, using: &random)))
                }
                return FuzzCase("tcp", [bytes], .anything)
            }
            let results = await FuzzExchange.runAll(port: frontend.port, cases)
            let hung = results.filter { $0.end == FuzzAnswer.End.timedOut || $0.end == FuzzAnswer.End.connectFailed }.count
            let answered = results.filter { !$0.bytes.isEmpty }.count
            print("TCPFuzz: \(cases.count) connections, \(answered) answered by redis, \(hung) hung or refused")
            #expect(hung == 0)
            #expect(try await Pooling.eventually(within: 5) { backend.inFlight == 0 && worker.admission.inFlight == 0 && frontend.admission.inFlight == 0 })
            #expect(try TCPMode.cli(frontend.port, "PING") == "PONG")

            await frontend.shutdown()
            await worker.shutdown()
            await redis.stop()
        }
    }
}
