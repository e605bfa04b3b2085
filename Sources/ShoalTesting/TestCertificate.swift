import Foundation

/// A self-signed certificate for `localhost` and 127.0.0.1, made with Debian's `openssl` at
/// test time into a fresh temporary directory, so no key is ever committed.
public struct TestCertificate: Sendable {
    /// The directory holding the files; ``remove()`` deletes it.
    public let directory: URL
    /// The certificate (PEM); also the CA file a client trusts it with.
    public let certificatePath: String
    /// Its private key (PEM, unencrypted).
    public let keyPath: String

    /// Makes a new key and certificate named `name` (`NAME.pem`, `NAME.key`) in a new directory,
    /// valid for `localhost`, 127.0.0.1 and the IPv4 `addresses`.
    public static func make(name: String = "localhost", addresses: [String] = []) throws -> TestCertificate {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("shoal-tls-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let certificate = directory.appendingPathComponent("\(name).pem").path
        let key = directory.appendingPathComponent("\(name).key").path
        let output = try ProcessRunner.run(URL(fileURLWithPath: "/usr/bin/openssl"), [
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=" + (["DNS:localhost", "IP:127.0.0.1"] + addresses.map { "IP:\($0)" }).joined(separator: ","),
            "-keyout", key, "-out", certificate,
        ], timeout: 60)
        guard output.status == 0 else {
            try? FileManager.default.removeItem(at: directory)
            throw ProcessRunner.Failure.notFound("a certificate from openssl (status \(output.status)): \(output.stderr)")
        }
        return TestCertificate(directory: directory, certificatePath: certificate, keyPath: key)
    }

    public func remove() {
        try? FileManager.default.removeItem(at: directory)
    }
}
