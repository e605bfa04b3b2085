import Foundation
import NIOSSL
import ShoalCore

/// Whether a certificate and key can serve TLS: both files readable, PEM that swift-nio-ssl
/// loads, and the key the certificate's. Used for the manifest's `tls` and for
/// `shoal frontend --tls-certificate/--tls-key`, so a bad pair is refused before anything listens.
public enum TLSFileCheck {
    /// One problem, and which of the two files it is about.
    public enum Problem: Sendable, Hashable {
        case certificate(String)
        case key(String)
    }

    /// Every problem with `files`; empty when a TLS server can be made from them.
    public static func problems(_ files: TLSFiles) -> [Problem] {
        var problems: [Problem] = []
        var chain: [NIOSSLCertificate] = []
        var key: NIOSSLPrivateKey?
        if let problem = unreadable(files.certificatePath) {
            problems.append(.certificate(problem))
        } else {
            do {
                chain = try NIOSSLCertificate.fromPEMFile(files.certificatePath)
                if chain.isEmpty { problems.append(.certificate("'\(files.certificatePath)' holds no PEM certificate")) }
            } catch {
                problems.append(.certificate("'\(files.certificatePath)' holds no PEM certificate (\(error))"))
            }
        }
        if let problem = unreadable(files.keyPath) {
            problems.append(.key(problem))
        } else {
            do {
                key = try NIOSSLPrivateKey(file: files.keyPath, format: .pem)
            } catch {
                problems.append(.key("'\(files.keyPath)' holds no unencrypted PEM private key (\(error))"))
            }
        }
        guard problems.isEmpty, let key else { return problems }
        do {
            // The context is what the front-end will make: BoringSSL checks the key against the leaf.
            _ = try NIOSSLContext(configuration: .makeServerConfiguration(
                certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key)))
        } catch {
            problems.append(.key("'\(files.keyPath)' is not the private key of '\(files.certificatePath)' (\(error))"))
        }
        return problems
    }

    private static func unreadable(_ path: String) -> String? {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return "no such file '\(path)'" }
        guard !isDirectory.boolValue else { return "'\(path)' is a directory, not a PEM file" }
        guard FileManager.default.isReadableFile(atPath: path) else { return "cannot read '\(path)'" }
        return nil
    }
}
