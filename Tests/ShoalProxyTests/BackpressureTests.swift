import Foundation
import NIOCore
import NIOPosix
import ShoalProxy
import ShoalTesting
import Testing

/// Bodies stream under backpressure: a slow reader on either side stops the relay reading the
/// other, so the relay never holds a whole body. The far ends are plain kernel sockets, so the
/// kernel's flow control is all there is besides the relay.
extension ProxyTests {
    @Suite struct Backpressure {
        /// This process's resident memory in bytes (the relay runs in the test process).
        static func residentBytes() -> Int {
            guard let handle = FileHandle(forReadingAtPath: "/proc/self/status") else { return 0 }
            defer { try? handle.close() }
            let status = String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return 0 }
            return (Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) ?? 0) * 1024
        }

        static let megabyte = 1024 * 1024

        @Test func slowClientPausesTheMember() async throws {
            let web = try WebServer()
            let relay = HTTPRelayServer.serviceManager(local: web.address, configuration: testConfiguration(), logger: LogCapture().logger)
            try await relay.start()

            let size = 128 * Self.megabyte
            let client = try BlockingSocket(port: relay.port)
            let before = Self.residentBytes()
            try client.send("GET /doc?size=\(size) HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            // Read nothing for a while: the kernel's buffers fill, then the relay must stop
            // reading the member rather than hold the document.
            try await Task.sleep(for: .seconds(1))
            let growth = Self.residentBytes() - before
            let received = client.receiveAll(seconds: 30)
            #expect(growth < 48 * Self.megabyte, "the relay grew by \(growth / Self.megabyte) MB while its client did not read")
            #expect(received > size)  // All of it, once the client reads.

            await relay.shutdown()
            web.stop()
        }

        @Test func slowMemberPausesTheClient() async throws {
            // A member that accepts but never reads.
            let stalled = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .childChannelOption(.autoRead, value: false)
                .bind(host: "127.0.0.1", port: 0).get()
            let relay = HTTPRelayServer.serviceManager(
                local: stalled.localAddress!,
                configuration: testConfiguration { $0.maxRequestBodyBytes = 1 << 30 },
                logger: LogCapture().logger)
            try await relay.start()

            let size = 384 * Self.megabyte
            let client = try BlockingSocket(port: relay.port)
            let before = Self.residentBytes()
            try client.send("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: \(size)\r\n\r\n")
            // What the kernel takes in 2 s: its socket buffers on both hops (tens of MB with
            // receive-buffer autotuning), and whatever the relay reads and holds.
            let accepted = client.sendWithoutBlocking(DocumentPattern.block, upTo: size, seconds: 2)
            let growth = Self.residentBytes() - before
            #expect(accepted < 128 * Self.megabyte, "a member that reads nothing was sent \(accepted / Self.megabyte) MB")
            #expect(growth < 48 * Self.megabyte, "the relay grew by \(growth / Self.megabyte) MB while its member did not read")

            // The exchange can't finish (the member never reads): shutdown cuts it off after the
            // grace period.
            let stopping = ContinuousClock.now
            await relay.shutdown(gracePeriod: .milliseconds(300))
            #expect(elapsed(since: stopping) < 10)  // The grace period, not the 30 s default (room for a busy machine).
            try await stalled.close()
        }
    }
}
