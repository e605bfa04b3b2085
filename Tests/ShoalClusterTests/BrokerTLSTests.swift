import Foundation
import Logging
import PVM
import ShoalTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The broker's API over TLS, with a certificate made at test time: the CLI that trusts it is
/// served; a plain-HTTP client and a client trusting another CA are not; and a broker asked to
/// listen beyond loopback without TLS refuses to start.
@Suite("broker API over TLS", .serialized)
struct BrokerTLSTests {
    @Test("https with the right CA is served; plain HTTP and a wrong CA are refused")
    func tlsAPI() async throws {
        let certificate = try TestCertificate.make()
        let stranger = try TestCertificate.make(name: "stranger")
        let state = NSTemporaryDirectory() + "shoal-tls-\(UUID().uuidString.prefix(8))"
        defer {
            certificate.remove()
            stranger.remove()
            try? FileManager.default.removeItem(atPath: state)
        }
        let broker = try ManagedProcess.startProduct("shoal", [
            "broker", "--slots", "1", "--port", "0", "--state-dir", state,
            "--tls-certificate", certificate.certificatePath, "--tls-key", certificate.keyPath,
        ], readyPrefix: "shoal broker listening on", timeout: 60)
        let url = ReadyLine.brokerURL(broker.firstLine) ?? ""
        let checked = Result { try check(url: url, line: broker.firstLine, certificate: certificate, stranger: stranger) }
        broker.stop()
        await PersistentPVMDaemon.stop(directory: state + "/pvm", logger: Logger(label: "test"))
        try checked.get()
    }

    private func check(url: String, line: String, certificate: TestCertificate, stranger: TestCertificate) throws {
        #expect(url.hasPrefix("https://127.0.0.1:"), "\(line)")

        let trusted = try ProcessRunner.runProduct("shoal", ["pool", "--broker", url, "--ca-file", certificate.certificatePath])
        #expect(trusted.status == 0, "\(trusted.stderr)")
        #expect(trusted.stdout.contains("HOST"), "\(trusted.stdout)")

        let plain = try ProcessRunner.runProduct("shoal", ["pool", "--broker", url.replacingOccurrences(of: "https://", with: "http://")])
        #expect(plain.status != 0, "a plain-HTTP client gets no answer: \(plain.stdout)")

        let wrongCA = try ProcessRunner.runProduct("shoal", ["pool", "--broker", url, "--ca-file", stranger.certificatePath])
        #expect(wrongCA.status != 0, "a client trusting another CA is refused: \(wrongCA.stdout)")
        #expect(wrongCA.stderr.lowercased().contains("certificate"), "it says why: \(wrongCA.stderr)")
    }

    @Test("beyond loopback without TLS the broker refuses to start, unless told --insecure-http")
    func plainBeyondLoopbackIsRefused() throws {
        let refused = try ProcessRunner.runProduct("shoal", ["broker", "--host", "0.0.0.0", "--port", "0", "--state-dir", "/nonexistent"])
        #expect(refused.status == 64, "a usage error: \(refused.stderr)")
        #expect(refused.stderr.contains("in clear") && refused.stderr.contains("--tls-certificate"), "\(refused.stderr)")
    }
}
