import Foundation
import NIOCore
import NIOWebSocket
import ShoalAPI
import ShoalClient
import ShoalCore
import ShoalTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// WebSocket and plain TCP through a back-end really leased from the broker: Debian's
/// unmodified `websocketd` (echoing through `cat`) and `redis-server`, used by a real
/// WebSocket client and by `redis-cli`, through a `shoal frontend` process and a worker that
/// PVM started on a namespace host.
@Suite("protocols through leased back-ends", .serialized)
struct ProtocolsThroughLeasesTests {
    /// Sends `text` and returns the next message's text, or nil when the socket ended.
    static func echo(_ text: String, over outbound: NIOAsyncChannelOutboundWriter<WebSocketFrame>,
                     _ frames: inout NIOAsyncChannelInboundStream<WebSocketFrame>.AsyncIterator) async throws -> String? {
        try await outbound.write(WebSocketClient.text(text))
        return try await Self.next(&frames, outbound: outbound, seconds: 10).map { String(buffer: $0.unmaskedData) }
    }

    /// The next frame, nil at the end of the socket. After `seconds` without one the test fails
    /// and our side is closed, which ends the socket (so a test never hangs).
    static func next(_ frames: inout NIOAsyncChannelInboundStream<WebSocketFrame>.AsyncIterator,
                     outbound: NIOAsyncChannelOutboundWriter<WebSocketFrame>, seconds: Double) async throws -> WebSocketFrame? {
        let timer = Task {
            try await Task.sleep(for: .seconds(seconds))
            Issue.record("no WebSocket frame within \(seconds) s")
            outbound.finish()
        }
        defer { timer.cancel() }
        do {
            return try await frames.next()
        } catch {
            return nil  // A reset is an end too.
        }
    }

    /// `cat` processes on `host`: websocketd runs one per socket.
    static func echoProcesses(_ cluster: Cluster, on host: String) async throws -> Int {
        try await cluster.hosts.processIDs(in: host).count { pid in
            (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)) == "cat\n"
        }
    }

    func webSocketManifest(_ cluster: Cluster) throws -> String {
        let staticDirectory = cluster.directory + "/ws-static"
        try FileManager.default.createDirectory(atPath: staticDirectory, withIntermediateDirectories: true)
        try "ok\n".write(toFile: staticDirectory + "/health", atomically: true, encoding: .utf8)
        let path = cluster.directory + "/ws.yaml"
        try """
            name: ws
            frontend: fe-ws
            command: websocketd
            args: ["--port", "{port}", "--address", "127.0.0.1", "--staticdir", "\(staticDirectory)", "cat"]
            port: 8080
            health_check: /health
            backends: {min: 1, max: 1}
            local: standby  # every connection to the leased back-end, none to the instance
            drain_timeout: 3s
            """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("a WebSocket through a leased back-end: messages both ways, a close, and a drain during an open socket")
    func webSocketThroughALeasedBackend() async throws {
        try await Cluster.with(hostCount: 1, slots: 1) { cluster in
            let frontend = try cluster.startFrontend(try webSocketManifest(cluster))
            #expect(try await cluster.eventually { try await cluster.leases().contains { $0.state == .active } })
            let lease = try #require(try await cluster.leases().first { $0.state == .active })
            let host = try #require(lease.host)
            // Straight to the worker, without the lease's secret, the upgrade is refused.
            let endpoint = try #require(lease.endpoint?.split(separator: ":"))
            await #expect(throws: (any Error).self) {
                _ = try await WebSocketClient.connect(host: String(endpoint[0]), port: try #require(Int(endpoint[1])))
            }

            // While a back-end is in rotation every socket goes to it: the `cat` behind it runs on its host.
            var routed = false
            for _ in 0..<50 where !routed {
                let connection = try await WebSocketClient.connect(port: frontend.port)
                routed = try await connection.executeThenClose { inbound, outbound in
                    var frames = inbound.makeAsyncIterator()
                    guard try await Self.echo("are you there?", over: outbound, &frames) == "are you there?" else { return false }
                    return try await Self.echoProcesses(cluster, on: host) == 1
                }
                if !routed { try await Task.sleep(for: .milliseconds(200)) }
            }
            #expect(routed, "no socket reached the back-end on \(host)")

            // Messages both ways, then the close handshake: ours, websocketd's answer, the end.
            let connection = try await WebSocketClient.connect(port: frontend.port)
            let closed = try await connection.executeThenClose { inbound, outbound in
                var frames = inbound.makeAsyncIterator()
                #expect(try await Self.echo("hello", over: outbound, &frames) == "hello")
                #expect(try await Self.echo("über 🐟", over: outbound, &frames) == "über 🐟")
                try await outbound.write(WebSocketClient.close())
                let answer = try await Self.next(&frames, outbound: outbound, seconds: 10)
                #expect(answer?.opcode == .connectionClose)
                return try await Self.next(&frames, outbound: outbound, seconds: 10) == nil
            }
            #expect(closed)
            #expect(try await cluster.eventually(timeout: .seconds(10)) { try await Self.echoProcesses(cluster, on: host) == 0 })

            // A drain while a socket is open: the socket still works until drain_timeout (3 s), then
            // the worker closes it. The lease ends then too: released if the worker reported drained
            // first, else revoked at the broker's deadline for the drain, the same 3 s.
            let open = try await WebSocketClient.connect(port: frontend.port)
            try await open.executeThenClose { inbound, outbound in
                var frames = inbound.makeAsyncIterator()
                #expect(try await Self.echo("before the drain", over: outbound, &frames) == "before the drain")
                #expect(try await Self.echoProcesses(cluster, on: host) == 1)
                let start = ContinuousClock.now
                _ = try await cluster.client.drain(lease: lease.id)
                #expect(try await cluster.eventually(timeout: .seconds(5)) {
                    try await cluster.leases(ids: [lease.id]).first?.state == .draining
                })
                #expect(try await Self.echo("during the drain", over: outbound, &frames) == "during the drain")
                // Nothing more comes; the socket ends when the drain's time is up.
                var end: WebSocketFrame? = try await Self.next(&frames, outbound: outbound, seconds: 20)
                while let frame = end, frame.opcode != .connectionClose {
                    end = try await Self.next(&frames, outbound: outbound, seconds: 20)
                }
                let waited = ContinuousClock.now - start
                #expect(waited >= .seconds(2.5) && waited < .seconds(15), "the socket ended after \(waited)")
            }
            let ended = try await cluster.eventually(timeout: .seconds(20)) {
                guard let final = try await cluster.leases(ids: [lease.id]).first else { return false }
                return final.state == .released || (final.state == .revoked && final.revocation == .drainDeadlinePassed)
            }
            let final = try await cluster.leases(ids: [lease.id])
            #expect(ended, "\(final)")
            #expect(try await cluster.eventually(timeout: .seconds(10)) { try await Self.echoProcesses(cluster, on: host) == 0 })
        }
    }

    @Test("a TCP service leased onto a back-end and used by its own client: redis-server and redis-cli")
    func redisThroughALeasedBackend() async throws {
        try await Cluster.with(hostCount: 1, slots: 1) { cluster in
            let path = cluster.directory + "/kv.yaml"
            try """
                name: kv
                frontend: fe-kv
                command: redis-server
                args: ["--port", "{port}", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
                port: 6379
                protocol: tcp
                backends: {min: 1, max: 1}
                local: standby  # every connection to the leased back-end, none to the instance
                drain_timeout: 3s
                """.write(toFile: path, atomically: true, encoding: .utf8)
            let frontend = try cluster.startFrontend(path)
            #expect(try await cluster.eventually { try await cluster.leases().contains { $0.state == .active } })
            let lease = try #require(try await cluster.leases().first { $0.state == .active })
            let endpoint = try #require(lease.endpoint?.split(separator: ":"))
            let (workerHost, workerPort) = (String(endpoint[0]), try #require(Int(endpoint[1])))

            func cli(_ arguments: [String]) throws -> String {
                let output = try ProcessRunner.run(URL(fileURLWithPath: "/usr/bin/redis-cli"), arguments, timeout: 10)
                return output.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            // Straight at the worker, redis-cli gets nothing: the worker wants the lease's secret first.
            #expect((try? cli(["-h", workerHost, "-p", "\(workerPort)", "PING"])) != "PONG")
            // With the secret the broker gives the holder (its POST answers), as the front-end's line does.
            let secret = try #require(try await cluster.client.renew(lease: lease.id).secret)
            func askBackend(_ command: String) throws -> String {
                let socket = try LoopbackSocket.connect(host: workerHost, port: workerPort, receiveTimeout: .seconds(5))
                defer { close(socket) }
                let request = Array("SHOAL \(secret)\r\n\(command)\r\nQUIT\r\n".utf8)
                _ = request.withUnsafeBytes { send(socket, $0.baseAddress, $0.count, 0) }
                var answer: [UInt8] = []
                var buffer = [UInt8](repeating: 0, count: 4096)
                while true {
                    let count = buffer.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
                    guard count > 0 else { break }
                    answer += buffer[0..<count]
                }
                return String(decoding: answer, as: UTF8.self)
            }
            // Through the front-end; then straight at the worker, whose redis holds what was set.
            var counter = 0
            let reachedTheBackend = try await cluster.eventually(timeout: .seconds(15)) {
                counter += 1
                guard try cli(["-p", "\(frontend.port)", "SET", "greeting", "hello \(counter)"]) == "OK" else { return false }
                return try askBackend("GET greeting").contains("hello \(counter)\r\n")
            }
            #expect(reachedTheBackend)
            #expect(try cli(["-p", "\(frontend.port)", "GET", "greeting"]) == "hello \(counter)")
            #expect(try cli(["-p", "\(frontend.port)", "RPUSH", "fish", "cod", "hake", "ling"]) == "3")
            #expect(try cli(["-p", "\(frontend.port)", "LRANGE", "fish", "0", "-1"]) == "cod\nhake\nling")
            #expect(try askBackend("LLEN fish") == ":3\r\n+OK\r\n")
        }
    }
}
