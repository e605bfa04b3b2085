import Foundation
import ShoalCore
import ShoalManifest
import ShoalTesting
import Testing

/// The manifest's `tls`: files relative to the manifest, both or neither, and a pair that
/// loads, every problem at its value. The certificates are made with `openssl` at test time.
@Suite struct ManifestTLSTests {
    /// A directory with `localhost.pem`/`.key`, `other.pem`/`.key` (another pair) and
    /// `garbage.pem`; `m.yaml` there holds `minimal` plus `tlsLine`.
    struct Files {
        let certificate: TestCertificate
        let other: TestCertificate
        var directory: String { certificate.directory.path }
        var manifest: String { directory + "/m.yaml" }

        init() throws {
            certificate = try TestCertificate.make()
            other = try TestCertificate.make(name: "other")
            for name in ["other.pem", "other.key"] {
                try FileManager.default.copyItem(atPath: other.directory.path + "/" + name, toPath: certificate.directory.path + "/" + name)
            }
            try "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n"
                .write(toFile: certificate.directory.path + "/garbage.pem", atomically: true, encoding: .utf8)
        }

        func remove() {
            certificate.remove()
            other.remove()
        }

        func load(_ tlsLine: String, checkTLSFiles: Bool = true) throws -> Result<[LoadedManifest], DiagnosticList> {
            try (minimal + tlsLine + "\n").write(toFile: manifest, atomically: true, encoding: .utf8)
            return ManifestLoader(checkTLSFiles: checkTLSFiles).load(paths: [manifest])
        }
    }

    @Test func filesAreReadRelativeToTheManifest() throws {
        let files = try Files()
        defer { files.remove() }
        let loaded = try files.load("tls: {certificate: localhost.pem, key: ./sub/../localhost.key}").get()
        #expect(loaded.first?.manifest.tls == TLSFiles(
            certificatePath: files.directory + "/localhost.pem", keyPath: files.directory + "/localhost.key"))
        // Absolute paths are taken as they are; no `tls` is plain TCP.
        let absolute = try files.load("tls:\n  certificate: \(files.directory)/localhost.pem\n  key: \(files.directory)/localhost.key").get()
        #expect(absolute.first?.manifest.tls == loaded.first?.manifest.tls)
        #expect(try manifest(minimal).get().manifest.tls == nil)
    }

    /// Each bad `tls` line and its exact diagnostics (`D` is the directory).
    @Test(arguments: [
        ("tls: {certificate: localhost.pem}", ["m.yaml:4:6: missing required key 'key' in tls"]),
        ("tls: {key: localhost.key}", ["m.yaml:4:6: missing required key 'certificate' in tls"]),
        ("tls: localhost.pem", [#"m.yaml:4:6: expected a mapping, found string "localhost.pem""#]),
        ("tls: {certificate: localhost.pem, key: localhost.key, chain: x}", ["m.yaml:4:55: unknown key 'chain' in tls (known keys: certificate, key)"]),
        ("tls: {certificate: \"\", key: localhost.key}", ["m.yaml:4:20: tls.certificate must not be empty"]),
        ("tls: {certificate: nope.pem, key: localhost.key}", ["m.yaml:4:20: tls.certificate: no such file 'D/nope.pem'"]),
        ("tls: {certificate: localhost.pem, key: nope.key}", ["m.yaml:4:40: tls.key: no such file 'D/nope.key'"]),
        ("tls: {certificate: ., key: localhost.key}", ["m.yaml:4:20: tls.certificate: 'D' is a directory, not a PEM file"]),
    ])
    func oneProblem(line: String, expected: [String]) throws {
        let files = try Files()
        defer { files.remove() }
        let directory = files.directory
        #expect(failures(try files.load(line)) == expected.map { directory + "/" + $0.replacingOccurrences(of: "'D", with: "'" + directory) })
    }

    /// What swift-nio-ssl refuses: not PEM, the key given as the certificate, another pair's key.
    @Test(arguments: [
        ("tls: {certificate: garbage.pem, key: localhost.key}", "m.yaml:4:20: tls.certificate: 'D/garbage.pem' holds no PEM certificate ("),
        ("tls: {certificate: localhost.key, key: localhost.key}", "m.yaml:4:20: tls.certificate: 'D/localhost.key' holds no PEM certificate"),
        ("tls: {certificate: localhost.pem, key: localhost.pem}", "m.yaml:4:40: tls.key: 'D/localhost.pem' holds no unencrypted PEM private key ("),
        ("tls: {certificate: localhost.pem, key: other.key}", "m.yaml:4:40: tls.key: 'D/other.key' is not the private key of 'D/localhost.pem' ("),
    ])
    func unloadablePEM(line: String, expectedPrefix: String) throws {
        let files = try Files()
        defer { files.remove() }
        let directory = files.directory
        let problems = failures(try files.load(line))
        #expect(problems.count == 1)
        let prefix = directory + "/" + expectedPrefix.replacingOccurrences(of: "'D", with: "'" + directory)
        #expect(problems.first?.hasPrefix(prefix) == true, "\(problems) does not start with \(prefix)")
    }

    /// The broker and the workers never serve TLS: they read the manifest without the files.
    @Test func withoutTheCheckMissingFilesAreAccepted() throws {
        let files = try Files()
        defer { files.remove() }
        let loaded = try files.load("tls: {certificate: nope.pem, key: nope.key}", checkTLSFiles: false).get()
        #expect(loaded.first?.manifest.tls?.certificatePath == files.directory + "/nope.pem")
        #expect(failures(try files.load("tls: {certificate: nope.pem}", checkTLSFiles: false))
            == [files.manifest + ":4:6: missing required key 'key' in tls"])
    }
}
