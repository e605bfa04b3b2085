import NIOSSL
import ShoalCore

extension HTTPRelayServer {
    /// The server side of TLS from `files`. An HTTP relay offers HTTP/1.1 only (ALPN), so a
    /// client never picks HTTP/2, which the relay does not speak.
    static func makeTLSContext(_ files: TLSFiles, serviceProtocol: ServiceProtocol) throws -> NIOSSLContext {
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        do {
            chain = try NIOSSLCertificate.fromPEMFile(files.certificatePath)
        } catch {
            throw ServerError.badTLSFile(files.certificatePath, "\(error)")
        }
        do {
            key = try NIOSSLPrivateKey(file: files.keyPath, format: .pem)
        } catch {
            throw ServerError.badTLSFile(files.keyPath, "\(error)")
        }
        var tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        if serviceProtocol == .http { tls.applicationProtocols = ["http/1.1"] }
        do {
            return try NIOSSLContext(configuration: tls)
        } catch {
            throw ServerError.badTLSFile(files.keyPath, "not the key of \(files.certificatePath): \(error)")
        }
    }
}
