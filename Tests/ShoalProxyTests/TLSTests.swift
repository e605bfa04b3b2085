import Foundation
import NIOCore
import ShoalCore
import ShoalProxy
import ShoalTesting
import Testing

/// TLS on the public port: a certificate made with `openssl` at test time, Debian's `curl`
/// trusting it, and a member that hears plain HTTP.
extension ProxyTests {
    @Suite struct TLS {
        static func curl(_ arguments: [String]) throws -> ProcessRunner.Output {
            try ProcessRunner.run(URL(fileURLWithPath: "/usr/bin/curl"), ["-sS", "--max-time", "20"] + arguments, timeout: 30)
        }

        /// A started service manager for `local`, serving TLS with `certificate`.
        static func tlsRelay(
            to local: SocketAddress?, _ certificate: TestCertificate, _ change: (inout RelayConfiguration) -> Void = { _ in }
        ) async throws -> HTTPRelayServer {
            let relay = HTTPRelayServer.serviceManager(local: local, configuration: testConfiguration {
                $0.tls = TLSFiles(certificatePath: certificate.certificatePath, keyPath: certificate.keyPath)
                change(&$0)
            }, logger: LogCapture().logger)
            try await relay.start()
            return relay
        }

        @Test func anHTTPSClientIsServedByAPlainMember() async throws {
            let certificate = try TestCertificate.make()
            defer { certificate.remove() }
            let member = try await HeaderEchoServer.start()
            let relay = try await Self.tlsRelay(to: member.localAddress, certificate) { $0.forwardedProto = "https" }

            // Two requests on one connection (curl reuses it: 0 new connects for the second).
            let url = "https://localhost:\(relay.port)"
            let output = try Self.curl([
                "--cacert", certificate.certificatePath, "-w", "\n[%{http_code} HTTP/%{http_version} connects %{num_connects}]\n",
                "\(url)/first", "\(url)/second?x=1",
            ])
            #expect(output.status == 0, "curl: \(output.stderr)")
            // The member heard plain HTTP/1.1, told the client's scheme.
            #expect(output.stdout.contains("GET /first HTTP/1.1\n"))
            #expect(output.stdout.contains("GET /second?x=1 HTTP/1.1\n"))
            #expect(output.stdout.components(separatedBy: "x-forwarded-proto: https\n").count == 3)
            // ALPN offers HTTP/1.1 only, so curl does not try HTTP/2.
            #expect(output.stdout.contains("[200 HTTP/1.1 connects 1]"))
            #expect(output.stdout.contains("[200 HTTP/1.1 connects 0]"))

            // A client that does not trust the certificate gives up in the handshake.
            let untrusting = try Self.curl(["\(url)/first"])
            #expect(untrusting.status == 60, "curl: \(untrusting.stdout) \(untrusting.stderr)")

            await relay.shutdown()
            try await member.close()
        }

        @Test func aLargeAnswerStreamsThroughTLSWhole() async throws {
            let certificate = try TestCertificate.make()
            defer { certificate.remove() }
            let web = try WebServer()
            let relay = try await Self.tlsRelay(to: web.address, certificate)

            let output = try Self.curl([
                "--cacert", certificate.certificatePath, "-o", "/dev/null", "-w", "%{http_code} %{size_download}",
                "https://127.0.0.1:\(relay.port)/doc?size=5000000",
            ])
            #expect(output.status == 0, "curl: \(output.stderr)")
            #expect(output.stdout == "200 5000000")

            await relay.shutdown()
            web.stop()
        }

        @Test func plainHTTPOnTheTLSPortIsClosedUnanswered() async throws {
            let certificate = try TestCertificate.make()
            defer { certificate.remove() }
            let member = try await HeaderEchoServer.start()
            let relay = try await Self.tlsRelay(to: member.localAddress, certificate)

            let socket = try BlockingSocket(port: relay.port)
            try socket.send("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            let start = ContinuousClock.now
            let answer = socket.receiveText(until: "HTTP/1.1", seconds: 10)
            // At most a TLS alert, never an HTTP answer; and closed, not left hanging.
            #expect(!answer.contains("HTTP/"))
            #expect(elapsed(since: start) < 5)
            socket.close()
            #expect(relay.members.local?.inFlight == 0)
            #expect(relay.admission.inFlight == 0)

            await relay.shutdown()
            try await member.close()
        }

        /// The real `shoal frontend`: `tls` in its manifest, paths relative to the manifest.
        @Test func theFrontendServesTLSFromItsManifest() async throws {
            let (directory, manifest) = try webServerManifest()
            defer { try? FileManager.default.removeItem(at: directory) }
            let certificate = try TestCertificate.make()
            defer { certificate.remove() }
            try FileManager.default.createDirectory(at: directory.appendingPathComponent("certs"), withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: certificate.certificatePath, toPath: directory.path + "/certs/site.pem")
            try FileManager.default.copyItem(atPath: certificate.keyPath, toPath: directory.path + "/certs/site.key")
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: manifest))
            handle.seekToEndOfFile()
            handle.write(Data("tls: {certificate: certs/site.pem, key: certs/site.key}\n".utf8))
            try handle.close()

            let frontend = try ManagedProcess.startProduct(
                "shoal", ["frontend", manifest, "--standalone", "--port", "0", "--metrics-port", "0"],
                readyPrefix: "shoal frontend", timeout: 30)
            defer { frontend.stop() }
            let ready = try #require(ReadyLine.frontend(frontend.firstLine))
            let output = try Self.curl([
                "--cacert", certificate.certificatePath, "-o", "/dev/null", "-w", "%{http_code} %{size_download}",
                "https://localhost:\(ready.port)/doc",
            ])
            #expect(output.status == 0, "curl: \(output.stderr)")
            #expect(output.stdout == "200 1024")
        }

        /// `--tls-certificate`/`--tls-key`: both or neither, and a pair that loads, else exit 1
        /// before anything starts.
        @Test func theFrontendRefusesABadPairOnItsCommandLine() throws {
            let (directory, manifest) = try webServerManifest()
            defer { try? FileManager.default.removeItem(at: directory) }
            let certificate = try TestCertificate.make()
            let other = try TestCertificate.make(name: "other")
            defer {
                certificate.remove()
                other.remove()
            }
            let alone = try ProcessRunner.runProduct("shoal", ["frontend", manifest, "--standalone", "--tls-certificate", certificate.certificatePath])
            #expect(alone.status == 64)
            #expect(alone.stderr.contains("Error: --tls-certificate and --tls-key go together"), "\(alone.stderr)")

            let mismatched = try ProcessRunner.runProduct("shoal", [
                "frontend", manifest, "--standalone", "--port", "0",
                "--tls-certificate", certificate.certificatePath, "--tls-key", other.keyPath,
            ])
            #expect(mismatched.status == 1)
            #expect(mismatched.stderr.hasPrefix(
                "shoal frontend: --tls-key: '\(other.keyPath)' is not the private key of '\(certificate.certificatePath)' ("), "\(mismatched.stderr)")
            #expect(mismatched.stdout == "")

            let missing = try ProcessRunner.runProduct("shoal", [
                "frontend", manifest, "--standalone", "--port", "0",
                "--tls-certificate", directory.path + "/none.pem", "--tls-key", directory.path + "/none.key",
            ])
            #expect(missing.status == 1)
            #expect(missing.stderr == """
                shoal frontend: --tls-certificate: no such file '\(directory.path)/none.pem'
                shoal frontend: --tls-key: no such file '\(directory.path)/none.key'

                """)
        }

        /// A WebSocket over TLS (`wss://`): NIO's client trusting the test certificate, through the
        /// front-end to a plain WebSocket server.
        @Test func aSecureWebSocket() async throws {
            let certificate = try TestCertificate.make()
            defer { certificate.remove() }
            let echo = try await WebSocketEchoServer()
            let relay = try await Self.tlsRelay(to: echo.address, certificate)

            let connection = try await WebSocketClient.connect(host: "localhost", port: relay.port, trustingCertificate: certificate.certificatePath)
            #expect(relay.admission.inFlight == 1)
            #expect(try await Upgrade.exchange(["hello", "über 🐟"], over: connection) == Upgrade.expected)
            #expect(try await Pooling.eventually(within: 2) { relay.admission.inFlight == 0 && relay.members.local?.inFlight == 0 })
            // Trusting only other roots, the handshake fails before any upgrade.
            await #expect(throws: (any Error).self) {
                _ = try await WebSocketClient.connect(host: "localhost", port: relay.port, trustingCertificate: "/etc/ssl/certs/ca-certificates.crt")
            }

            await relay.shutdown()
            echo.stop()
        }

        /// `protocol: tcp` behind TLS: Debian's `redis-cli --tls` through a TCP-mode front-end to a
        /// plain `redis-server`.
        @Test func aTCPServiceBehindTLS() async throws {
            let certificate = try TestCertificate.make()
            defer { certificate.remove() }
            let redis = try await TCPMode.redis()
            let relay = HTTPRelayServer.serviceManager(
                local: try SocketAddress(ipAddress: redis.host, port: redis.port), configuration: TCPMode.tcp {
                    $0.tls = TLSFiles(certificatePath: certificate.certificatePath, keyPath: certificate.keyPath)
                }, logger: LogCapture().logger)
            try await relay.start()

            func cli(_ arguments: [String]) throws -> ProcessRunner.Output {
                try ProcessRunner.run(URL(fileURLWithPath: "/usr/bin/redis-cli"),
                                      ["--tls", "--cacert", certificate.certificatePath, "-h", "localhost", "-p", "\(relay.port)"] + arguments, timeout: 10)
            }
            #expect(try cli(["SET", "sea", "salt"]).stdout == "OK\n")
            #expect(try cli(["GET", "sea"]).stdout == "salt\n")
            // The same port without TLS: redis-cli gets no answer.
            let plain = try ProcessRunner.run(URL(fileURLWithPath: "/usr/bin/redis-cli"), ["-p", "\(relay.port)", "GET", "sea"], timeout: 10)
            #expect(!plain.stdout.contains("salt"))
            #expect(try await Pooling.eventually(within: 2) { relay.admission.inFlight == 0 })

            await relay.shutdown()
            await redis.stop()
        }

        /// 600 connections of random bytes, plain HTTP (valid and mutated) and TLS records with
        /// random contents to the TLS port: each ends within 5 s, none is ever answered in HTTP
        /// (nothing reaches the relay but what TLS let through), nothing stays counted, and an
        /// HTTPS client is served afterwards.
        @Test func fuzzedBytesOnTheTLSPort() async throws {
            let certificate = try TestCertificate.make()
            defer { certificate.remove() }
            let member = try await HeaderEchoServer.start()
            let relay = try await Self.tlsRelay(to: member.localAddress, certificate)

            var random = SplitMix64(seed: 0xF022_0016_715)
            let requests = ["GET / HTTP/1.1\r\nHost: a\r\n\r\n", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"]
            let cases = (0..<600).map { round -> FuzzCase in
                var bytes: [UInt8]
                switch round % 3 {
                case 0:
                    bytes = (0..<Int.random(in: 1...2000, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
                case 1:
                    bytes = UpgradeAndTCPFuzz.mutate(requests[round % 2], &random)
                default:
                    // A handshake record header (type 22, TLS 1.0 to 1.3) and a body of random length and bytes.
                    let length = Int.random(in: 0...600, using: &random)
                    bytes = [22, 3, UInt8.random(in: 1...4, using: &random), UInt8(length >> 8), UInt8(length & 0xFF)]
                        + (0..<Int.random(in: 0...length, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
                }
                return FuzzCase("tls", [bytes], .anything)
            }
            let results = await FuzzExchange.runAll(port: relay.port, cases)
            let hung = results.filter { $0.end == FuzzAnswer.End.timedOut || $0.end == FuzzAnswer.End.connectFailed }.count
            let answeredInHTTP = results.filter { String(decoding: $0.bytes, as: UTF8.self).contains("HTTP/1.") }.count
            let alerts = results.filter { $0.bytes.first == 21 }.count
            print("TLSFuzz: \(cases.count) connections, \(alerts) answered with a TLS alert, \(answeredInHTTP) in HTTP, \(hung) hung or refused")
            #expect(hung == 0)
            #expect(answeredInHTTP == 0)
            #expect(try await Pooling.eventually(within: 5) { relay.admission.inFlight == 0 && relay.members.local?.inFlight == 0 })
            let output = try Self.curl([
                "--cacert", certificate.certificatePath, "-o", "/dev/null", "-w", "%{http_code}", "https://localhost:\(relay.port)/after",
            ])
            #expect(output.stdout == "200", "curl: \(output.stderr)")

            await relay.shutdown()
            try await member.close()
        }

        @Test func aBadPairKeepsTheRelayFromListening() async throws {
            let certificate = try TestCertificate.make()
            let other = try TestCertificate.make(name: "other")
            defer {
                certificate.remove()
                other.remove()
            }
            for files in [
                TLSFiles(certificatePath: certificate.certificatePath, keyPath: certificate.directory.path + "/missing.key"),
                TLSFiles(certificatePath: certificate.keyPath, keyPath: certificate.keyPath),
                TLSFiles(certificatePath: certificate.certificatePath, keyPath: other.keyPath),
            ] {
                let relay = HTTPRelayServer.serviceManager(
                    local: nil, configuration: testConfiguration { $0.tls = files }, logger: LogCapture().logger)
                await #expect(throws: (any Error).self) { try await relay.start() }
                #expect(relay.localAddress == nil)
            }
        }
    }
}
